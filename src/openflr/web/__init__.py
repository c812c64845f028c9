"""The web page's files (``static/``): plain HTML, CSS and JavaScript modules, no build step. The
server serves them at ``/`` (``api/routes/page.py``); the page itself talks only to the API."""
