"""PlatformIO development platform `tinygen-qemu` (see platform.json and builder/main.py).

Nothing to customize: no packages to install (the compiler comes from PATH), no frameworks,
no upload tools. PlatformIO finds the class by the platform's name: TinygenqemuPlatform.
"""

from platformio.public import PlatformBase


class TinygenqemuPlatform(PlatformBase):
    pass
