"""A minimal Windows registry hive (REGF) writer: a root key with subkeys holding binary values.

Enough to give the fixture Windows VM a ``SYSTEM`` hive whose ``MountedDevices`` key assigns drive
letters, so the guest view's letter mapping is tested against a real hive layout (read back by
libregf, an independent reader, in the tests).
"""

from __future__ import annotations

import struct

REG_BINARY = 3
_NONE = 0xFFFFFFFF
_FILETIME = 133_000_000_000_000_000  # a fixed timestamp (2022) keeps the output reproducible


class _Bin:
    def __init__(self) -> None:
        self.data = bytearray()

    def cell(self, payload: bytes) -> int:
        """Append an allocated cell; returns its offset relative to the first hive bin."""
        size = (len(payload) + 4 + 7) & ~7
        offset = 32 + len(self.data)
        self.data += struct.pack("<i", -size) + payload + b"\0" * (size - 4 - len(payload))
        return offset


def _nk(
    name: str,
    parent: int,
    subkeys: int,
    subkey_list: int,
    values: int,
    value_list: int,
    root: bool,
    max_name: int,
    max_value_name: int,
    max_data: int,
) -> bytes:
    raw = name.encode("ascii")
    flags = 0x2C if root else 0x20
    return (
        struct.pack(
            "<2sHQIIIIIIIIIIIIIIIHH",
            b"nk",
            flags,
            _FILETIME,
            0,
            parent,
            subkeys,
            0,
            subkey_list,
            _NONE,
            values,
            value_list,
            _NONE,
            _NONE,
            max_name * 2,
            0,
            max_value_name * 2,
            max_data,
            0,
            len(raw),
            0,
        )
        + raw
    )


def hive(keys: dict[str, dict[str, bytes]], root_name: str = "ROOT") -> bytes:
    """A hive whose root has one subkey per entry of ``keys``, each with REG_BINARY values."""
    b = _Bin()
    # Value cells first, then the subkeys, then the root (offsets are only known once written).
    placed: list[tuple[str, int, int, int, int, int]] = []
    root_placeholder = b.cell(b"\0" * 96)  # reserved for the root key; rewritten at the end
    for key_name, values in keys.items():
        value_offsets = []
        for value_name, data in values.items():
            data_off = b.cell(data)
            vname = value_name.encode("ascii")
            value_offsets.append(
                b.cell(
                    struct.pack("<2sHIIIHH", b"vk", len(vname), len(data), data_off, REG_BINARY, 1, 0) + vname
                )
            )
        vlist = b.cell(struct.pack(f"<{len(value_offsets)}I", *value_offsets)) if value_offsets else _NONE
        max_vname = max((len(v) for v in values), default=0)
        max_data = max((len(d) for d in values.values()), default=0)
        placed.append((key_name, vlist, len(value_offsets), max_vname, max_data, 0))
    subkey_offsets = []
    for key_name, vlist, nvalues, max_vname, max_data, _ in placed:
        subkey_offsets.append(
            b.cell(_nk(key_name, root_placeholder, 0, _NONE, nvalues, vlist, False, 0, max_vname, max_data))
        )
    li = b.cell(struct.pack(f"<2sH{len(subkey_offsets)}I", b"li", len(subkey_offsets), *subkey_offsets))
    root = _nk(root_name, 0, len(subkey_offsets), li, 0, _NONE, True, max(len(k) for k in keys), 0, 0)
    start = root_placeholder - 32
    size = -struct.unpack_from("<i", b.data, start)[0]
    if len(root) > size - 4:
        raise ValueError("root key name too long for the reserved cell")
    b.data[start + 4 : start + 4 + len(root)] = root
    # Fill the bin to a 4 KiB multiple with one free cell.
    body_len = 32 + len(b.data)
    total = (body_len + 4095) // 4096 * 4096
    if total > body_len:
        b.data += struct.pack("<i", total - body_len) + b"\0" * (total - body_len - 4)
    hbin = struct.pack("<4sIIQQI", b"hbin", 0, total, 0, _FILETIME, 0) + bytes(b.data)
    base = bytearray(4096)
    struct.pack_into(
        "<4sIIQIIIIIII", base, 0, b"regf", 1, 1, _FILETIME, 1, 5, 0, 1, root_placeholder, total, 1
    )
    name = "\\??\\C:\\Windows\\System32\\config\\SYSTEM".encode("utf-16-le")[:64]
    base[48 : 48 + len(name)] = name
    checksum = 0
    for (dword,) in struct.iter_unpack("<I", bytes(base[:508])):
        checksum ^= dword
    struct.pack_into("<I", base, 508, checksum)
    return bytes(base) + hbin


def mounted_devices(letters: dict[str, bytes]) -> bytes:
    """A SYSTEM hive whose ``MountedDevices`` maps ``\\DosDevices\\X:`` to the given volume ids."""
    values = {f"\\DosDevices\\{letter}": data for letter, data in letters.items()}
    return hive({"MountedDevices": values, "Select": {}})


def gpt_volume_id(partition_guid_bytes_le: bytes) -> bytes:
    return b"DMIO:ID:" + partition_guid_bytes_le


def mbr_volume_id(disk_signature: int, offset: int) -> bytes:
    return struct.pack("<IQ", disk_signature, offset)
