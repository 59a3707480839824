"""Running foreign-architecture builds through qemu-user-static and the kernel's binfmt_misc."""

from imgfront.emulation.binfmt import (
    BINFMT_MISC,
    Handler,
    RegisterLine,
    elf_platform,
    is_mounted,
    parse_handler,
    parse_register_line,
    read_handlers,
)
from imgfront.emulation.qemu import (
    BINFMT_D,
    CAVEATS,
    Action,
    HandlerStatus,
    InstallResult,
    emulated_platforms,
    fix_command,
    install,
    installable_platforms,
    status,
)

__all__ = [
    "BINFMT_D",
    "BINFMT_MISC",
    "CAVEATS",
    "Action",
    "Handler",
    "HandlerStatus",
    "InstallResult",
    "RegisterLine",
    "elf_platform",
    "emulated_platforms",
    "fix_command",
    "install",
    "installable_platforms",
    "is_mounted",
    "parse_handler",
    "parse_register_line",
    "read_handlers",
    "status",
]
