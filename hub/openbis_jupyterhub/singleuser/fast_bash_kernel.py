"""bash_kernel without pexpect's pause before every line it sends (the image's Bash kernel).

At start bash_kernel defines its helper functions by sending about 40 lines to bash, one at
a time; pexpect sleeps ``delaybeforesend`` (50 ms) before each, so the kernel needed ~3 s to
start, 2 s of it sleeping. The pause protects programs that echo a password prompt late;
bash_kernel waits for bash's prompt after every line anyway, so nothing is lost without it.
"""

import pexpect
from bash_kernel.kernel import BashKernel
from ipykernel.kernelapp import IPKernelApp


class _Spawn(pexpect.spawn):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.delaybeforesend = None


if __name__ == "__main__":
    pexpect.spawn = _Spawn  # bash_kernel looks it up at kernel start: only this process
    IPKernelApp.launch_instance(kernel_class=BashKernel)
