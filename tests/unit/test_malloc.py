"""The allocator arena limit the embedded platform's processes set before their threads start."""

import subprocess
import sys

import pytest

from services.common import malloc


def test_the_limit_takes_effect_in_a_fresh_process_on_glibc() -> None:
    # A process of its own: the limit holds for the rest of a process's life.
    done = subprocess.run([sys.executable, "-c", "from services.common.malloc import limit_malloc_arenas as l; "
                           "print(l())"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"


def test_an_arena_limit_set_in_the_environment_is_left_to_decide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc.limit_malloc_arenas() is False


def test_without_a_c_library_to_ask_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(malloc.ctypes.util, "find_library", lambda _name: None)
    assert malloc.limit_malloc_arenas() is False
