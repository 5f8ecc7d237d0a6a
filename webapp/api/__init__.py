"""The HTTP API: one blueprint per area, and the JSON errors they all answer with.

==============  ===========================================================
``page``        the page people open (``/``) and its icon
``streams``     MJPEG of one camera or several, snapshots
``status``      ``/api/cameras``, ``/healthz``
``detection``   run a detector now, its newest result, boxes drawn
``push``        ``/events`` (Server-Sent Events) and ``/ws/<name>``
``media``       a camera's own video: ``/mse/<name>`` (WebSocket) and ``/hls/<name>/``
``events``      ``/api/events``: what the detectors saw, snapshots, clips
``recordings``  ``/api/recordings``: stored video, played back or as MP4
``compat``      mjpg-streamer's and ustreamer's URLs
``zones``       a camera's zones and masks, for the page's editor (admins)
==============  ===========================================================

Sign-in and tokens are webapp/auth/'s blueprint; ``/metrics`` is
webapp/integrations/metrics.py's. The app factory registers them all
(webapp/app.py). Nothing is imported here: webapp/serve/ imports
``common`` alone, and the blueprints import webapp/serve/.
"""
