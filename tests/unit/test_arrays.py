"""Pure planning of job arrays (hydra_plugins/kdgat_chain_launcher/_arrays.py): no SLURM, no torch."""

import pytest

from hydra_plugins.kdgat_chain_launcher._arrays import StagePlan, frozen, plan_units

TEACHER = [StagePlan("autoencoder", (), "r"), StagePlan("curriculum", ("autoencoder",), "r"),
           StagePlan("fusion", ("autoencoder", "curriculum"), "r")]


def summary(units):
    return [(u.stage, u.chains, u.array, u.after) for u in units]


def test_equal_chains_make_one_array_per_stage_each_waiting_on_the_last():
    units = plan_units([TEACHER] * 6, [True] * 6, enabled=True, max_array_size=1001)
    assert summary(units) == [
        ("autoencoder", [0, 1, 2, 3, 4, 5], True, []),
        ("curriculum", [0, 1, 2, 3, 4, 5], True, [0]),
        ("fusion", [0, 1, 2, 3, 4, 5], True, [0, 1]),
    ]


def test_switched_off_or_a_single_chain_gives_single_jobs():
    off = plan_units([TEACHER] * 2, [True] * 2, enabled=False, max_array_size=1001)
    assert summary(off) == [("autoencoder", [0], False, []), ("curriculum", [0], False, [0]),
                            ("fusion", [0], False, [0, 1]), ("autoencoder", [1], False, []),
                            ("curriculum", [1], False, [3]), ("fusion", [1], False, [3, 4])]
    one = plan_units([TEACHER], [True], enabled=True, max_array_size=1001)
    assert [u.array for u in one] == [False, False, False]


def test_differing_resources_split_into_separate_arrays_and_singles():
    big = [StagePlan(s.name, s.needs, "big" if s.name == "curriculum" else "r") for s in TEACHER]
    units = plan_units([TEACHER, big, TEACHER, big, TEACHER], [True] * 5, enabled=True, max_array_size=1001)
    arrays = {(u.stage, tuple(u.chains)) for u in units if u.array}
    assert arrays == {(s, (0, 2, 4)) for s in ("autoencoder", "curriculum", "fusion")} | \
        {(s, (1, 3)) for s in ("autoencoder", "curriculum", "fusion")}
    assert not [u for u in units if not u.array]


def test_resumed_chains_group_by_what_is_left_and_outside_waits_stay_single():
    gat_and_fusion = [StagePlan("curriculum", (), "r"), StagePlan("fusion", ("curriculum",), "r")]
    units = plan_units([TEACHER, gat_and_fusion, TEACHER, gat_and_fusion, TEACHER],
                       [True, True, True, True, False], enabled=True, max_array_size=1001)
    got = summary(units)
    assert ("autoencoder", [0, 2], True, []) in got  # chain 4 waits on an outside job: single
    assert ("curriculum", [1, 3], True, []) in got
    singles = [u for u in units if not u.array]
    assert [u.chains for u in singles] == [[4], [4], [4]]
    # every unit comes after the units it waits on
    assert all(a < i for i, u in enumerate(units) for a in u.after)


def test_long_arrays_split_at_max_size_keeping_the_task_pairing():
    units = plan_units([TEACHER] * 5, [True] * 5, enabled=True, max_array_size=2)
    got = summary(units)
    assert [u.chains for u in units] == [[0, 1]] * 3 + [[2, 3]] * 3 + [[4]] * 3
    assert got[3:6] == [("autoencoder", [2, 3], True, []), ("curriculum", [2, 3], True, [3]),
                        ("fusion", [2, 3], True, [3, 4])]
    assert got[6:] == [("autoencoder", [4], False, []), ("curriculum", [4], False, [6]),
                       ("fusion", [4], False, [6, 7])]  # a remainder of one chain: single jobs
    with pytest.raises(ValueError):
        plan_units([TEACHER], [True], enabled=True, max_array_size=0)


def test_chains_with_nothing_to_submit_are_left_out():
    units = plan_units([[], TEACHER, []], [True] * 3, enabled=True, max_array_size=10)
    assert [u.chains for u in units] == [[1]] * 3


def test_frozen_parameters_ignore_key_order():
    assert frozen({"a": 1, "b": {"c": [1, 2]}}) == frozen({"b": {"c": [1, 2]}, "a": 1})
    assert frozen({"a": 1}) != frozen({"a": 2})
