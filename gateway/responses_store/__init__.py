"""Stored responses: what the Responses API keeps server-side, for routes the gateway translates.

A response the gateway made (a translated upstream's reply, as the client got it) is kept with the
input items that led to it, its owner (the gateway key) and its model alias; `previous_response_id`
continues it (the conversation is rebuilt from what was kept), and GET/DELETE
/v1/responses/{id} (and .../input_items) read and delete it. An upstream that speaks the Responses API
itself keeps its own: its ids go to it untouched.
"""
