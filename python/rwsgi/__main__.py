"""``python -m rwsgi ARGS``: the same launcher as the ``rwsgi-express``
command, with the same arguments (see :func:`rwsgi.express.main`)."""

from rwsgi.express import main

if __name__ == "__main__":
    main()
