"""The catalog fixture chain, catalogued once per session by the real builder (worker processes)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from openflr.catalog.builder import SUFFIX
from openflr.catalog.store import CatalogFile
from openflr.config import DatastoreSettings, Settings
from openflr.core.filecatalog import FileCatalog
from openflr.inventory.catalog import Catalog
from openflr.inventory.model import Inventory, Replica
from tests.catalog.chain import POINTS, Chain, ensure_chain


@dataclass
class Built:
    """The chain's VM with every point catalogued."""

    chain: Chain
    settings: Settings
    inventory: Inventory
    replica: Replica
    files: FileCatalog
    ids: dict[str, str]
    """Point label (p1...) -> point id."""

    @property
    def catalog(self) -> CatalogFile:
        return self.files.builder.file(self.replica.id)

    @property
    def ordered(self) -> list[str]:
        return [self.ids[p] for p in POINTS]


def make_settings(chain: Chain, data_dir: Path) -> Settings:
    settings = Settings(data_dir=data_dir)
    settings.datastores = [DatastoreSettings("catalog-chain", chain.datastore)]
    settings.catalog.workers = 2
    return settings


def scan(settings: Settings) -> tuple[Inventory, Replica, dict[str, str]]:
    inventory = Catalog(settings).rescan()
    (replica,) = inventory.replicas.values()
    return inventory, replica, {p.label: p.id for p in replica.points}


@pytest.fixture(scope="session")
def chain() -> Chain:
    return ensure_chain()


@pytest.fixture(scope="session")
def built(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    settings = make_settings(chain, tmp_path_factory.mktemp("catalog-built"))
    inventory, replica, ids = scan(settings)
    files = FileCatalog(settings)
    files.start(inventory)
    assert files.builder.wait_idle(timeout=120), "the catalog builds did not finish"
    yield Built(chain, settings, inventory, replica, files, ids)
    files.stop()


def copy_built(built: Built, data_dir: Path) -> Built:
    """A separate copy of the built catalog (for tests that drop points, add hashes or rebuild)."""
    settings = make_settings(built.chain, data_dir)
    settings.catalog_dir.mkdir(parents=True)
    target = settings.catalog_dir / f"{built.replica.id}{SUFFIX}"
    source = sqlite3.connect(f"file:{built.catalog.path}?mode=ro", uri=True)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)
    finally:
        source.close()
        dest.close()
    inventory, replica, ids = scan(settings)
    return Built(built.chain, settings, inventory, replica, FileCatalog(settings), ids)


@pytest.fixture
def own(built: Built, tmp_path: Path) -> Iterator[Built]:
    """A copy of the built catalog this test may change."""
    copy = copy_built(built, tmp_path / "data")
    yield copy
    copy.files.stop()
