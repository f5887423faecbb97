"""How long a LocalCluster nanny takes to bring back its SIGKILLed workers (both killed once; up to 40 s)."""

import logging
import os
import signal
import time

from distributed import Client, LocalCluster

import napari_spectral_seg  # noqa: F401  (workers import it when they run a task, not at start)


def main():
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2, timeout=120)
        for attempt in range(1):  # after one kill of both the count is 0: later kills find no pid
            pids = client.run(os.getpid)
            for pid in pids.values():
                os.kill(pid, signal.SIGKILL)
            t0 = time.monotonic()
            while len(client.nthreads()) == 2:  # the scheduler notices
                time.sleep(0.05)
            while len(client.nthreads()) < 2 and time.monotonic() - t0 < 40:
                time.sleep(0.1)
            print(
                f"kill {attempt + 1}: {len(client.nthreads())} workers back after {time.monotonic() - t0:.1f} s; load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
