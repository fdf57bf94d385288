"""linking/line/client.py against the fake LINE platform: calls share this
process's connections to LINE, and a forked worker opens its own."""

import os

from linking.line import client
from linking.line.client import Push
from tests.fakes.line import line_user_id


def _push(friend: str, number: int) -> Push:
    return client.push_text(
        line_user_id=friend, text="こんにちは", retry_key=client.retry_key("test", number)
    )


def test_pushes_share_one_connection_to_line(fake_line):
    friend = line_user_id()
    fake_line.set_friend(friend)
    _push(friend, 0)  # the process's connection, open from here on
    opened = fake_line.idp.connections

    assert [_push(friend, number) for number in range(1, 6)] == [Push.SENT] * 5

    assert fake_line.idp.connections == opened
    assert len(fake_line.messages(friend)) == 6


def test_a_forked_worker_opens_its_own_connection(fake_line):
    friend = line_user_id()
    fake_line.set_friend(friend)
    _push(friend, 0)
    opened = fake_line.idp.connections

    child = os.fork()
    if child == 0:
        os._exit(0 if _push(friend, 1) == Push.SENT else 1)
    _pid, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert fake_line.idp.connections == opened + 1
    assert _push(friend, 2) == Push.SENT  # the parent's connection still works
    assert fake_line.idp.connections == opened + 1
