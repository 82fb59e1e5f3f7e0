"""siyu's triggers, one screen: webhooks, timers, queues. Wiring only; the code is in chalicelib/."""

from chalice import Chalice, IAMAuthorizer, Rate

from chalicelib import jobs, web

app = Chalice(app_name="siyu")

WEBHOOK_TYPES = ["text/xml", "application/xml", "text/plain", "application/json", "application/octet-stream"]
ADMIN = IAMAuthorizer()


@app.route("/wechat/oa", methods=["GET", "POST"], content_types=WEBHOOK_TYPES)
def on_official_account():
    return web.official_account(app.current_request)


@app.route("/wechat/work", methods=["GET", "POST"], content_types=WEBHOOK_TYPES)
def on_wecom():
    return web.work_callback(app.current_request)


@app.route("/hooks/orders", methods=["POST"], content_types=["application/json"])
def on_order():
    return web.order_hook(app.current_request)


@app.route("/admin/members/{member_id}", methods=["GET"], authorizer=ADMIN)
def admin_member(member_id):
    return web.admin_member(app.current_request, member_id)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def redrive_stalled_events(event):
    jobs.redrive_stalled_events()
