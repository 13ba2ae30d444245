"""Ids: unique, the secret ones unguessable, and never shared with a forked child."""

import os
import re

from agentflow.ids import new_id, secret_id


def test_secret_ids_are_128_bit_hex_and_unique_across_many_buffer_refills():
    ids = [secret_id() for _ in range(10_000)]  # about 40 refills of the random block
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_makes_ids_other_than_its_parents():
    secret_id()  # the parent now holds unused random bytes a careless child would reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave without running pytest's exit
        os.write(write, f"{secret_id()} {new_id()}".encode())
        os._exit(0)
    os.close(write)
    child_secret, child_unique = os.read(read, 200).decode().split()
    os.close(read)
    os.waitpid(pid, 0)
    assert child_secret != secret_id()
    assert child_unique[:16] != new_id()[:16]  # another per-process prefix
