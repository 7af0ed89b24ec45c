"""The collector settings of long-lived processes."""

import gc

from pdr_core.heap import freeze_startup_objects


def test_objects_alive_at_startup_leave_the_collector_and_later_ones_do_not():
    alive: dict = {}
    alive["self"] = alive  # a cycle: only the collector could ever free it
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())
        later: dict = {}
        later["self"] = later
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.unfreeze()
