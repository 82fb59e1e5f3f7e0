"""siyu's triggers, one screen: webhooks, timers, queues. Wiring only; the code is in chalicelib/."""

from chalice import Chalice, CognitoUserPoolAuthorizer, IAMAuthorizer, Rate

from chalicelib import jobs, web
from chalicelib.console import routes as console

app = Chalice(app_name="siyu")

WEBHOOK_TYPES = ["text/xml", "application/xml", "text/plain", "application/json", "application/octet-stream"]
ADMIN = IAMAuthorizer()
# The console's people sign in with the user pool in infra/resources.json, which replaces this
# placeholder ARN in the packaged template (README, "The ops console"); the local stage logs in
# with a token instead (chalicelib/console/auth.py).
STAFF = CognitoUserPoolAuthorizer(
    "console", provider_arns=["arn:aws:cognito-idp:ap-east-1:000000000000:userpool/ap-east-1_console"]
)


@app.route("/wechat/oa", methods=["GET", "POST"], content_types=WEBHOOK_TYPES)
def on_official_account():
    return web.official_account(app.current_request)


@app.route("/wechat/work", methods=["GET", "POST"], content_types=WEBHOOK_TYPES)
def on_wecom():
    return web.work_callback(app.current_request)


@app.route("/hooks/orders", methods=["POST"], content_types=["application/json"])
def on_order():
    return web.order_hook(app.current_request)


@app.route("/pos/coupons/check", methods=["POST"], content_types=["application/json"])
def on_till_check():
    return web.till_coupon(app.current_request, "check")


@app.route("/pos/coupons/redeem", methods=["POST"], content_types=["application/json"])
def on_till_redeem():
    return web.till_coupon(app.current_request, "redeem")


@app.route("/pos/coupons/{code}/void", methods=["POST"], content_types=["application/json"])
def on_till_void(code):
    return web.till_coupon(app.current_request, "void", code)


@app.route("/pos/members/{member_code}", methods=["GET"])
def on_till_member(member_code):
    return web.till_member(app.current_request, member_code)


@app.route("/mp/member-code", methods=["POST"], content_types=["application/json"])
def on_member_code():
    return web.member_code(app.current_request)


@app.route("/pos/points/redeem", methods=["POST"], content_types=["application/json"])
def on_till_points():
    return web.till_points(app.current_request)


@app.route("/mp/points/redeem", methods=["POST"], content_types=["application/json"])
def on_mini_program_points():
    return web.mini_program_points(app.current_request)


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


# --- the ops console: the page, and its API for people (Cognito in AWS) ---------------------------


@app.route("/console", methods=["GET"])
def console_page():
    return console.page(app.current_request)


@app.route("/console/assets/{name}", methods=["GET"])
def console_asset(name):
    return console.asset(app.current_request, name)


@app.route("/console/api/me", methods=["GET"], authorizer=STAFF)
def console_me():
    return console.me(app.current_request)


@app.route("/console/api/kpis", methods=["GET"], authorizer=STAFF)
def console_kpis():
    return console.kpis(app.current_request)


@app.route("/console/api/alerts", methods=["GET"], authorizer=STAFF)
def console_alerts():
    return console.alerts(app.current_request)


@app.route("/console/api/tickets", methods=["GET"], authorizer=STAFF)
def console_tickets():
    return console.tickets(app.current_request)


@app.route("/console/api/tickets/{ticket_id}", methods=["GET"], authorizer=STAFF)
def console_ticket(ticket_id):
    return console.ticket(app.current_request, ticket_id)


@app.route("/console/api/tickets/{ticket_id}", methods=["POST"], content_types=["application/json"], authorizer=STAFF)
def console_record_ticket(ticket_id):
    return console.ticket_record(app.current_request, ticket_id)


@app.route("/console/api/members", methods=["GET"], authorizer=STAFF)
def console_search_members():
    return console.search(app.current_request)


@app.route("/console/api/members/{member_id}", methods=["GET"], authorizer=STAFF)
def console_member(member_id):
    return console.member(app.current_request, member_id)


@app.route(
    "/console/api/members/{member_id}/erase", methods=["POST"], content_types=["application/json"], authorizer=STAFF
)
def console_erase_member(member_id):
    return console.member_erase(app.current_request, member_id)


@app.route("/console/api/rules", methods=["GET"], authorizer=STAFF)
def console_rules():
    return console.rules(app.current_request)


@app.route("/console/api/rules/schemas", methods=["GET"], authorizer=STAFF)
def console_rule_schemas():
    return console.rule_schemas(app.current_request)


@app.route("/console/api/rules/diff", methods=["GET"], authorizer=STAFF)
def console_rules_diff():
    return console.rules_diff(app.current_request)


@app.route("/console/api/rules/check", methods=["POST"], content_types=["application/json"], authorizer=STAFF)
def console_check_rules():
    return console.rules_check(app.current_request)


@app.route("/console/api/rules/preview", methods=["POST"], content_types=["application/json"], authorizer=STAFF)
def console_preview_rules():
    return console.rules_preview(app.current_request)


@app.route("/console/api/rules", methods=["PUT"], content_types=["application/json"], authorizer=STAFF)
def console_publish_rules():
    return console.rules_publish(app.current_request)


@app.route(
    "/console/api/rules/{version}/activate", methods=["POST"], content_types=["application/json"], authorizer=STAFF
)
def console_roll_back_rules(version):
    return console.rules_rollback(app.current_request, version)


@app.route("/console/api/recall", methods=["GET"], authorizer=STAFF)
def console_recall():
    return console.recall(app.current_request)


@app.route("/console/api/campaigns", methods=["GET"], authorizer=STAFF)
def console_campaigns():
    return console.campaigns(app.current_request)


@app.route("/console/api/experiments", methods=["GET"], authorizer=STAFF)
def console_experiments():
    return console.experiments(app.current_request)


@app.route("/console/api/audit", methods=["GET"], authorizer=STAFF)
def console_audit():
    return console.audit_log(app.current_request)


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


@app.schedule(Rate(15, unit=Rate.MINUTES))
def evaluate_segments(event):
    jobs.evaluate_segments()


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


@app.schedule(Rate(15, unit=Rate.MINUTES))
def run_campaigns(event):
    jobs.run_campaigns()


@app.schedule(Rate(30, unit=Rate.MINUTES))
def check_group_pushes(event):
    jobs.check_group_pushes()
