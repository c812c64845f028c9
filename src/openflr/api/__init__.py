"""Enterprise Manager wire layer: routing, auth, content negotiation, type registry, XML/JSON, errors."""
