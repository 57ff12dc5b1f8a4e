"""Config-store entries shared, not copied, at each compose: what makes that safe is checked here."""

import copy

from hydra.core.config_store import ConfigStore

from hydra_plugins.kdgat_chain_launcher import SharedNode, share_config_store


def test_a_shared_entry_is_not_copied_with_the_store_and_every_load_is_a_copy():
    store = ConfigStore.instance()
    store.store(name="shared_probe", node={"a": 1, "b": {"c": [1, 2]}}, group="kdgat_test")
    share_config_store()
    entry = store.repo["kdgat_test"]["shared_probe.yaml"]
    assert isinstance(entry, SharedNode)
    assert copy.deepcopy(store.repo)["kdgat_test"]["shared_probe.yaml"] is entry  # what Hydra does per compose

    loaded = store.load("kdgat_test/shared_probe.yaml")
    loaded.node.a = 2
    loaded.node.b.c.append(3)
    again = store.load("kdgat_test/shared_probe.yaml")
    assert (again.node.a, list(again.node.b.c)) == (1, [1, 2])
    assert (again.name, again.group) == ("shared_probe.yaml", "kdgat_test")
    del store.repo["kdgat_test"]
