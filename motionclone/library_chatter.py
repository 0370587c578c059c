"""Library chatter (diffusers' dtype notes, transformers' warnings) is not for end users: the
command line and the daemon both silence it the same way."""

from __future__ import annotations

import logging
import warnings


def quiet_libraries() -> None:
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
