"""The VM designs vmlab can run, behind one interface (base.py).

``DESIGNS`` maps a design's name to its class; ``vmlab.designs()`` lists the names.
"""

from __future__ import annotations

from .base import Design, DesignStats, Mapping
from .linux import LinuxDesign
from .anonmm import AnonMMDesign
from .sharedpt import SharedPTDesign
from .ptechains import PteChainsDesign
from .vmscan22 import Vmscan22Design
from .bsd import BsdDesign

DESIGNS: dict[str, type[Design]] = {
    LinuxDesign.name: LinuxDesign,
    AnonMMDesign.name: AnonMMDesign,
    SharedPTDesign.name: SharedPTDesign,
    PteChainsDesign.name: PteChainsDesign,
    Vmscan22Design.name: Vmscan22Design,
    BsdDesign.name: BsdDesign,
}


def design_names() -> list[str]:
    return list(DESIGNS)


__all__ = ["Design", "DesignStats", "Mapping", "DESIGNS", "design_names", "LinuxDesign", "AnonMMDesign"]
