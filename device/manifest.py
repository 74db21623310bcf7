# device/ as frozen modules; every board's manifest includes this file.
module("mnserver.py")
module("mnutil.py")
module("mnboot.py")
