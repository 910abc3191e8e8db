"""Map callbacks: fit the city into the map's real size in the browser (clientside, no round trip)."""
from dash import ClientsideFunction, Input, Output, State, clientside_callback

clientside_callback(
    ClientsideFunction(namespace="ucc", function_name="fitDeck"),
    Output("city-map", "data"),
    Input("city-map-bounds", "data"),
    State("city-map", "data"),
    State("city-map", "id"),
)
