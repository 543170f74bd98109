"""The browser client (plain HTML and JavaScript modules, no build step), shipped as package data.

``avatar serve`` serves these files at ``/``; they are found with
``importlib.resources.files("avatar_web")``, so the page is there whether the
engine runs from a checkout or from an installed wheel.
"""
