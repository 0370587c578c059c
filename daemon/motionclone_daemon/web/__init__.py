"""The daemon's web page: the queue, live previews, results and watch folders, on loopback.

`server.py` listens and guards every request (Host, Origin, session), `routes.py` maps paths to
the JSON views of `api.py`, the event streams of `events.py` and the files of `files.py`;
`session.py` turns a one-time link into a session cookie; `static/` is the page itself.
"""
