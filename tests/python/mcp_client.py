"""The MCP interop check: the official Python `mcp` client (not ours) spawns
`nexscopectl mcp`, lists the tools and calls each one given on the command
line. Prints one JSON object: the tool names and each call's result.

usage: mcp_client.py NEXSCOPECTL PROJECT CALLS_JSON
CALLS_JSON is a list of [tool, arguments].
"""
import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main():
    binary, project, calls = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    params = StdioServerParameters(command=binary, args=["--project", project, "mcp"], env=dict(os.environ))
    out = {"calls": []}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            out["server"] = {"name": init.serverInfo.name, "version": init.serverInfo.version}
            tools = await session.list_tools()
            out["tools"] = sorted(t.name for t in tools.tools)
            out["schemas"] = {t.name: t.inputSchema for t in tools.tools}
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                text = "".join(c.text for c in result.content if getattr(c, "type", "") == "text")
                out["calls"].append({"tool": name, "isError": bool(result.isError), "text": text})
    print(json.dumps(out))


asyncio.run(main())
