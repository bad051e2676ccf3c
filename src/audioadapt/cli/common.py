"""Small pieces shared by the command modules."""

from __future__ import annotations

import argparse


class IntermixedParser(argparse.ArgumentParser):
    """Accepts ``key=value`` overrides after options (``PRESET --data ROOT a.b=1``)."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False
