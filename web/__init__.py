"""What every web edge (api, auth, live, layouts, callbacks) shares: the app's services, who is asking, the error answer."""
