"""The ceiling: a bare ASGI app answering one static JSON body to every request."""

BODY = b'[{"pd_appointment_uuid":"ef987691-0a19-447f-814d-f8f3abbf4859","appointment_id":"UYQDUHSMIRCA",' \
       b'"appointment_type":"OV1","booked":false,"provider_scheduler_uuid":"8b21efa4-8535-11e4-a6cb-0800272e8da1",' \
       b'"start_date":"2014-12-16T15:09:34.197709","end_date":"2014-12-16T16:09:34.197717"}]'


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]})
    await send({"type": "http.response.body", "body": BODY})
