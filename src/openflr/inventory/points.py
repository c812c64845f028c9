"""Turning a VM folder's images into replica points: the per-datastore scan context, the error a
folder that cannot be used raises, and backing chains grouped into points by layer (qcow2, AVHDX)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from openflr.config import DatastoreSettings
from openflr.guestfs import images
from openflr.inventory.model import DiskChain, ReplicaPoint, stable_id


class ScanError(Exception):
    """A VM folder cannot be used; the message says why (it is reported, and the folder skipped)."""


@dataclass
class ScanContext:
    datastore: DatastoreSettings
    probes: dict[Path, images.ImageInfo] = field(default_factory=dict)

    def replica_id(self, folder: Path, extra: str = "") -> str:
        rel = folder.relative_to(self.datastore.path).as_posix()
        return stable_id("replica", self.datastore.name, rel, extra)

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.datastore.path).as_posix()
        except ValueError:
            return str(path)

    def chain(self, top: Path) -> list[images.ImageInfo]:
        """The chain below ``top``; parents and extents must lie in the datastore (an image is data
        from the replica: its header must not make openflr read files elsewhere on the server)."""
        return images.chain(top, self.probes, within=self.datastore.path)


def layered_points(ctx: ScanContext, folder: Path, files: list[Path], kind: str) -> list[ReplicaPoint]:
    """Points of VMs whose snapshots are plain backing chains (qcow2, Hyper-V AVHDX).

    Every image that another image builds on is frozen: one point per frozen layer. The image at the
    top of each chain is the VM's current state and not a point. Disks are matched layer by layer in
    time order; a point's time is the modification time of its frozen layer (the last write before
    the next layer took over).
    """
    infos = {f: ctx.probes.get(f.resolve()) or images.probe(f) for f in files}
    for f, info in infos.items():
        ctx.probes[f.resolve()] = info
    parents = {info.parent.resolve() for info in infos.values() if info.parent is not None}
    tops = sorted(f for f in files if f.resolve() not in parents)
    disks: list[list[images.ImageInfo]] = []
    for top in tops:
        chain = ctx.chain(top)
        disks.append(chain)
    if not disks:
        return []
    by_base: dict[Path, list[list[images.ImageInfo]]] = {}
    for chain in disks:
        by_base.setdefault(chain[-1].path.resolve(), []).append(chain)
    frozen_per_disk: list[list[images.ImageInfo]] = []
    for _base, chains in sorted(by_base.items(), key=lambda kv: kv[0].name):
        if len(chains) == 1:  # a straight chain: its own order, base first
            frozen_per_disk.append(list(reversed(chains[0][1:])))
            continue
        # Branches (an older checkpoint applied, then new ones): order the frozen layers by time.
        frozen: dict[Path, images.ImageInfo] = {}
        for chain in chains:
            for info in chain[1:]:
                frozen[info.path.resolve()] = info
        frozen_per_disk.append(
            sorted(frozen.values(), key=lambda i: (i.path.stat().st_mtime_ns, i.path.name))
        )
    counts = {len(f) for f in frozen_per_disk}
    if len(counts) > 1:
        raise ScanError(
            f"the VM's disks have different numbers of frozen layers ({sorted(counts)}); "
            "cannot tell which layers belong to the same point"
        )
    replica_id = ctx.replica_id(folder)
    points = []
    for level in range(counts.pop()):
        point_disks = []
        for d, layers in enumerate(frozen_per_disk):
            chain = ctx.chain(layers[level].path)
            point_disks.append(
                DiskChain(f"disk{d}", tuple(i.path for i in chain), chain[0].format, chain[0].virtual_size)
            )
        first = frozen_per_disk[0][level].path
        ns = first.stat().st_mtime_ns
        created = datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
            microsecond=(ns // 1000) % 1_000_000
        )
        point_id = stable_id("point", replica_id, kind, ctx.relative(first))
        points.append(ReplicaPoint(point_id, replica_id, created, tuple(point_disks)))
    return sorted(points, key=lambda p: p.created)
