"""glibc keeps freed memory for reuse (omnisep_plugin.allocator): a training step's
activations, freed at the end of each step, are not page-faulted in again at the next."""
import platform
import subprocess
import sys

import pytest

STEPS = """
import resource, sys, torch
from omnisep_plugin.allocator import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "keep" else False
from omnisep_plugin.models import OmniSep
torch.manual_seed(0)
torch.set_num_threads(1)
model = OmniSep(query_dim=8, unet_widths=[8, 16, 32, 32, 32])
opt = torch.optim.Adam(model.parameters())
wav, query = torch.randn(4, 2, 32767), torch.randn(4, 2, 8)
def step():
    opt.zero_grad()
    model.compute_loss(wav.sum(1), wav, query).backward()
    opt.step()
for _ in range(4):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(kept, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 3)
"""


def _faults_per_step(mode):
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_training_steps_reuse_freed_memory_without_page_faults():
    kept, with_keep = _faults_per_step("keep")
    _, with_default = _faults_per_step("default")
    assert kept
    assert with_default > 2000            # glibc's default: the activations faulted in again
    assert with_keep < with_default / 10  # kept: the same pages reused


def test_training_turns_it_on_and_the_setting_can_turn_it_off():
    from omnisep_plugin.config import train_defaults
    assert train_defaults()["training"]["keep_freed_memory"] is True
