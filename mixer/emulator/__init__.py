"""A stand-in QueueMetrics AMO server: WSGI app, simulated dialer, scenarios and faults.

Tests drive it in-process through ``httpx.WSGITransport``; the demo, the simulator and
``amo-mixer emulator`` serve it on a loopback port (``mixer.emulator.server.serve``).
"""
