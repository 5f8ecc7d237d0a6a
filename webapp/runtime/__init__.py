"""What an app runs, and how it starts, reloads and stops.

``registry``   :class:`Runtime` (one per app, ``runtime_of(app)``) and a :class:`CameraUnit` per camera
``lineup``     starting the cameras of a plan; ``reload`` (SIGHUP) applying what changed
``detectors``  starting detectors and waiting until each has loaded
``recording``  the storage and its retention, opened with the first camera that records

Nothing is imported here: the routes import ``registry`` alone.
"""
