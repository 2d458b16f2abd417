"""The live report's counting process lives and dies with the service: stopping the service
stops a count in progress instead of waiting for it, and a service killed outright does not
leave the counting process (nor the fork server that started it) behind."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from equip_mailer.send.lock_owner import pid_alive
from equip_mailer.team.report_cache import counting_pool, stop_counting


def gone(pid: int, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_stopping_ends_a_count_in_progress_at_once():
    pool = counting_pool()
    worker = pool.submit(os.getpid).result(timeout=60)
    count = pool.submit(time.sleep, 120)  # a count of a million events, as far as we know
    time.sleep(0.3)
    assert count.running()
    started = time.monotonic()
    stop_counting(pool)
    assert time.monotonic() - started < 10
    assert gone(worker)
    with pytest.raises(concurrent.futures.process.BrokenProcessPool):
        count.result(timeout=30)


SERVICE = textwrap.dedent(
    """
    import os, sys, time
    from equip_mailer.team.report_cache import counting_pool
    pool = counting_pool()
    print(pool.submit(os.getpid).result(), pool.submit(os.getppid).result(), flush=True)
    if sys.argv[1] == "counting":  # when the service is killed
        pool.submit(time.sleep, 120)
    time.sleep(300)
    """
)


@pytest.mark.parametrize("how", ["idle", "counting"])
def test_a_killed_service_leaves_no_counting_process_behind(how):
    service = subprocess.Popen(
        [sys.executable, "-c", SERVICE, how], stdout=subprocess.PIPE, text=True
    )
    try:
        assert service.stdout is not None
        worker, fork_server = map(int, service.stdout.readline().split())
        assert pid_alive(worker) and pid_alive(fork_server)
        service.send_signal(signal.SIGKILL)
        service.wait(30)
        assert gone(worker), "the counting process outlived the service"
        assert gone(fork_server), "the fork server outlived the service"
    finally:
        service.kill()
        service.wait(30)
