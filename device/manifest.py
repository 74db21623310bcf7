# device/ as frozen modules; every board's manifest includes this file.
module("mnserver.py")
module("mnutil.py")
module("mnboot.py")


# `micronn firmware build --freeze MODULE.py` adds a blob module made by `micronn freeze`.
import os  # noqa: E402

_extra = os.environ.get("MICRONN_FREEZE")
if _extra:
    module(os.path.basename(_extra), base_path=os.path.dirname(_extra))
