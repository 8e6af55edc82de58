# herald's dashboard, in English: the words editors see under /admin.

dashboard = Dashboard
dashboard-brand = dashboard
dashboard-log-out = Log out
dashboard-back = Back to the dashboard

login-title = Log in
login-token-label = Admin token
login-button = Log in
login-help = The token is web.admin_token, or the contents of the file named by web.admin_token_file (herald.admin-token by default), which herald serve names when it starts.
login-wrong-token = That is not the admin token.
login-throttled = { $seconds ->
    [one] Too many wrong tokens from this address. Try again in one second.
   *[other] Too many wrong tokens from this address. Try again in { $seconds } seconds.
}

home-subscribers = Subscribers
home-subscribers-total = in all
home-schedule = Schedule
home-next-run = Next automatic send:
home-next-issue = It would send:
home-nothing-due = Nothing is due for it yet: no unsent issue dated by then is newer than the last one sent.
home-schedule-off = The schedule is off (schedule.cron); issues go out only when sent by hand.
home-issues = Issues
home-no-issues = No issue files in the issues folder yet.
refresh = Refresh

# Subscriber statuses
subscriber-status = { $status ->
    [pending] pending
    [active] active
    [unsubscribed] unsubscribed
    [bounced] bounced
    [complained] complained
   *[other] { $status }
}
# Issue and delivery statuses
issue-status = { $status ->
    [draft] draft
    [scheduled] scheduled
    [queued] queued
    [sending] sending
    [retry] retry
    [sent] sent
    [failed] failed
    [skipped] skipped
    [cancelled] cancelled
   *[other] { $status }
}

issue-all-issues = All issues
issue-started = Started { $at }.
issue-started-finished = Started { $at }, finished { $finished }.
issue-test-label = Send a test copy to
issue-test-placeholder = you@example.org
issue-test-button = Send test
issue-send-button = Send now…
issue-retry-button = Retry failed
issue-preview = Preview
issue-preview-title = The issue as a subscriber receives it
issue-file-gone = The issue's file is no longer in the issues folder.

send-title = Send { $title }?
send-back = Back to the issue
send-heading = Send “{ $title }”?
send-audience = { $count ->
    [one] It goes to every active subscriber: one now.
   *[other] It goes to every active subscriber: { $count } now.
}
send-again = It was sent before ({ $status }): only subscribers who have not received it get it; nobody gets it twice.
send-confirm = { $count ->
    [one] Yes, send it to one subscriber
   *[other] Yes, send it to { $count } subscribers
}
send-button = Send now

notice-test-sent = The test copy was accepted by the relay.
notice-sending = The issue is being sent.
notice-requeued = The failed deliveries that may succeed were put back in the queue.
notice-nothing-to-retry = There were no failed deliveries to retry.

dashboard-error-login = Please log in
dashboard-error-forbidden = Request refused
dashboard-error-forbidden-body = The form has expired or did not come from this dashboard; nothing was done. Go back, reload the page and try again.
dashboard-error-not-found = Not found
dashboard-error-not-found-body = There is nothing at this address.
dashboard-error-bad-request = That did not work
dashboard-error-internal = Something went wrong
dashboard-error-internal-body = The request could not be completed; the cause is in herald's log.
dashboard-error-tick = Tick the confirmation box to send the issue.
dashboard-error-relay = The relay did not accept the test copy: { $reply }
dashboard-error-address = The address is not valid: please check it and try again.
dashboard-error-draft = { $slug } is a draft (draft: true in its front matter): remove that line to send it.
