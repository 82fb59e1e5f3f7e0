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


@app.route("/admin/members/{member_id}", methods=["DELETE"], authorizer=ADMIN)
def admin_erase_member(member_id):
    return web.admin_erase_member(app.current_request, member_id)


@app.route("/admin/rules", methods=["GET"], authorizer=ADMIN)
def admin_rules():
    return web.admin_rules_get(app.current_request)


@app.route("/admin/rules", methods=["PUT"], authorizer=ADMIN)
def admin_publish_rules():
    return web.admin_rules_put(app.current_request)


@app.route("/admin/rules/{version}/activate", methods=["POST"], authorizer=ADMIN)
def admin_activate_rules(version):
    return web.admin_rules_activate(app.current_request, version)


@app.route("/admin/tickets/{ticket_id}", methods=["GET"], authorizer=ADMIN)
def admin_ticket(ticket_id):
    return web.admin_ticket_get(app.current_request, ticket_id)


@app.route("/admin/tickets/{ticket_id}", methods=["POST"], content_types=["application/json"], authorizer=ADMIN)
def admin_record_ticket(ticket_id):
    return web.admin_ticket_record(app.current_request, ticket_id)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def redrive_stalled_events(event):
    jobs.redrive_stalled_events()


@app.on_sqs_message(queue="siyu-outbox", batch_size=10)
def send_outbox_messages(event):
    jobs.send_messages([record.body for record in event])


@app.schedule(Rate(1, unit=Rate.MINUTES))
def release_due_messages(event):
    jobs.release_due_messages()


@app.schedule(Rate(15, unit=Rate.MINUTES))
def recall_sweep(event):
    jobs.recall_sweep()


@app.schedule(Rate(1, unit=Rate.HOURS))
def run_loyalty_day(event):
    jobs.run_loyalty_day()


@app.schedule(Rate(1, unit=Rate.HOURS))
def check_thresholds(event):
    jobs.check_thresholds()


@app.schedule(Rate(1, unit=Rate.HOURS))
def send_weekly_digest(event):
    jobs.send_weekly_digest()


@app.schedule(Rate(5, unit=Rate.MINUTES))
def review_sla(event):
    jobs.review_sla()
