"""Request-path ids: the documented formats, never repeated, different in a forked child."""

from __future__ import annotations

import os
import re

from agenthost import ids


def test_prefixed_ids_have_32_hex_characters_and_do_not_repeat() -> None:
    made = [ids.prefixed("resp") for _ in range(10_000)]
    assert all(re.fullmatch(r"resp_[0-9a-f]{32}", value) for value in made)
    assert len(set(made)) == len(made)
    assert re.fullmatch(r"[0-9a-f]{16}", ids.token(8))


def test_a_forked_child_makes_other_ids_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next ids and leave at once
        os.write(write, " ".join(ids.token() for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    parent = [ids.token() for _ in range(3)]
    assert len(child) == 3 and not set(child) & set(parent)
