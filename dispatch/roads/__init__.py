"""Roads: routing by street for quotes, dispatch, fares and the simulator (docs/roads.md).

* ``engine``   Valhalla's tile sets and the request/answer documents both adapters share
* ``build``    `manage.py roads_build`: an OpenStreetMap extract into tiles, streets and a manifest
* ``routers``  the Router protocol: Valhalla in-process, Valhalla over HTTP, the model, and the fallback
* ``choice``   which router this process uses, from settings
"""
