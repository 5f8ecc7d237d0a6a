"""Serving: waitress set up for streams, sockets taken over from it, stream slots, idle connections.

``server``       waitress with the settings streams need (``make_server``, ``listen``)
``connections``  keeping waitress answering when clients hold connections and do nothing
``handoff``      taking a stream's socket over from waitress
``slots``        the cap on concurrent streams
``streaming``    serving an endless response: a slot, then the sender thread or WSGI

Nothing is imported here, so that a module of this package can be imported
alone by the runtime without the whole server.
"""
