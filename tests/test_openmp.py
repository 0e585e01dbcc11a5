"""How engage tells OpenMP's idle threads to wait (engage/__init__.py): spin on a free machine,
sleep on a busy one."""

import os
import subprocess
import sys

from engage import openmp_waiting


def test_a_free_machine_spins_briefly_and_a_crowded_one_sleeps():
    assert openmp_waiting(0.3, 2) == ("GOMP_SPINCOUNT", "300000")
    assert openmp_waiting(1.9, 2) == ("GOMP_SPINCOUNT", "300000")
    assert openmp_waiting(2.0, 2) == ("OMP_WAIT_POLICY", "PASSIVE")
    assert openmp_waiting(11.3, 2) == ("OMP_WAIT_POLICY", "PASSIVE")
    assert openmp_waiting(0.5, 0) == ("GOMP_SPINCOUNT", "300000")  # cpu_count() unknown: one CPU


def test_an_explicit_setting_wins_over_the_load():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "import os, engage; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    chosen = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert chosen.stdout.split() in (["None", "300000"], ["PASSIVE", "None"])
    mine = subprocess.run([sys.executable, "-c", code], env={**env, "GOMP_SPINCOUNT": "7"},
                          capture_output=True, text=True, check=True)
    assert mine.stdout.split() == ["None", "7"]
