"""The interop check: the reference Python varlink client (PyPI `varlink`),
not ours, talks to nexscoped. Prints one JSON object with what it got.

usage: varlink_client.py SOCKET
"""
import json
import sys

import varlink

address = "unix:" + sys.argv[1]
result = {}
with varlink.Client(address=address) as client:
    # GetInfo, as `python -m varlink.cli info` does it.
    with client.open("org.varlink.service") as service:
        info = service.GetInfo()
        result["info"] = info
        result["description"] = service.GetInterfaceDescription("io.nexscope.Daemon")["description"]
    # The client parses the served IDL to build a typed proxy: this fails if
    # the text is not valid varlink.
    interface = client.get_interface("io.nexscope.Daemon")
    result["parsed_members"] = sorted(interface.members.keys())
    result["all_parsed"] = [client.get_interface(name).name for name in info["interfaces"]]
    with client.open("io.nexscope.Daemon") as daemon:
        result["status"] = daemon.Status()["status"]
        try:
            connection = client.open_connection()
            connection.send(json.dumps({"method": "io.nexscope.Daemon.NoSuchMethod"}).encode() + b"\0")
            reply = b""
            while not reply.endswith(b"\0"):
                chunk = connection.recv(4096)
                if not chunk:
                    break
                reply += chunk
            result["unknown_method"] = json.loads(reply.rstrip(b"\0"))
        finally:
            connection.close()
        try:
            daemon._call("Frobnicate")
        except varlink.VarlinkError as error:
            result["unknown_method_via_proxy"] = error.error()
        except Exception as error:  # the proxy refuses methods the IDL lacks
            result["unknown_method_via_proxy"] = type(error).__name__
print(json.dumps(result, default=lambda o: o.__dict__))
