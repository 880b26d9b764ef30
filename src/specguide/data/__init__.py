"""The files specguide ships (``defaults/``: priors, surrogates, the site model and its data, MD sets), no code.

Find and load them through :mod:`specguide.pretrained`."""
