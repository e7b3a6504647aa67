"""The kubevirt engine's sliding window (engines/kubevirt/schedule.py): pure, no cluster."""
from kubectl_vmmig.engines.kubevirt.schedule import DONE, QUEUED, RUNNING, admit, counts, state_of


def q(name, node=None, live=False):
    return (name, QUEUED, node, live)


def r(name, node=None, live=False):
    return (name, RUNNING, node, live)


def test_never_more_than_n_in_flight():
    assert admit([q("a"), q("b"), q("c"), q("d")], 3, None) == ["a", "b", "c"]
    assert admit([r("a"), r("b"), q("c"), q("d")], 3, None) == ["c"]
    assert admit([r("a"), r("b"), r("c"), q("d")], 3, None) == []


def test_the_next_starts_as_soon_as_one_ends_not_in_waves():
    window = [("a", DONE, None, False), r("b"), r("c"), q("d"), q("e")]
    assert admit(window, 3, None) == ["d"]


def test_per_node_limit_passes_over_a_full_node_and_keeps_the_order():
    vms = [r("a", "n1", True), r("b", "n1", True), q("c", "n1", True), q("d", "n2", True), q("e", "n1", True)]
    assert admit(vms, 5, 2) == ["d"]
    # offline copies leave no node (KubeVirt's outbound count is of live migrations only)
    assert admit([r("a", "n1", True), r("b", "n1", True), q("c", "n1", False)], 5, 2) == ["c"]


def test_per_node_counts_what_it_admits_in_the_same_call():
    assert admit([q("a", "n1", True), q("b", "n1", True), q("c", "n1", True), q("d", "n2", True)], 10, 2) \
        == ["a", "b", "d"]


def test_no_limits_start_everything_queued():
    assert admit([q("a"), r("b"), q("c")], None, None) == ["a", "c"]


def test_states_of_record_phases():
    assert [state_of(p) for p in ("Pending", "Queued", None, "CreatingVolumes", "Migrating", "Completed",
                                  "Failed", "Canceled")] == [QUEUED, QUEUED, QUEUED, RUNNING, RUNNING, DONE,
                                                             DONE, DONE]
    assert counts(["Queued", "Migrating", "Completed", "Pending"]) == {QUEUED: 2, RUNNING: 1, DONE: 1}
