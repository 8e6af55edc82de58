# herald's dashboard, in English: the words editors see under /admin.
#
# Variables named $at, $finished, $token, $issue and the like may hold markup the template
# builds (a link, a <code> element, a <time>): write them where the sentence needs them.
# $count and $seconds are numbers and choose the plural form.

dashboard = Dashboard
dashboard-brand = dashboard
dashboard-log-out = Log out
dashboard-back = Back to the dashboard
dashboard-nav-bounces = Returned mail

login-title = Log in
login-token-label = Admin token
login-button = Log in
login-help = The token is { $token }, or the contents of the file named by { $token_file } ({ $default_file } by default), which { $serve } names when it starts.
login-wrong-token = That is not the admin token.
login-throttled = { $seconds ->
    [one] Too many wrong tokens from this address. Try again in one second.
   *[other] Too many wrong tokens from this address. Try again in { $seconds } seconds.
}

home-subscribers = Subscribers
home-subscribers-total = in all
home-schedule = Schedule
home-next-run = Next automatic send: { $at }.
home-next-issue = It would send { $issue }.
home-nothing-due = Nothing is due for it yet: no unsent issue dated by then is newer than the last one sent.
home-schedule-off = The schedule is off ({ $key }); issues go out only when sent by hand.
home-issues = Issues
home-no-issues = No issue files in the issues folder yet.
refresh = Refresh
# Deliveries finished of all, and the share in whole percent: "12 / 40 (30%)".
progress = { $done } / { $total } ({ $percent }%)

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
    [unsent] unsent
    [queued] queued
    [sending] sending
    [retry] retry
    [sent] sent
    [failed] failed
    [skipped] skipped
    [cancelled] cancelled
   *[other] { $status }
}

issue-all-issues = ← All issues
issue-throttled = Slowed down by throttling replies:
# A destination group's current pace: "gmail.com 2.5/s".
issue-throttled-group = { $group } { $rate }/s
issue-bounced-hard = bounced hard
issue-bounced-soft = bounced soft
issue-complaints = complaints
issue-test-label = Send a test copy to
issue-test-placeholder = you@example.org
issue-test-button = Send test
issue-send-button = Send now…
issue-retry-button = Retry failed
issue-preview = Preview
issue-preview-title = The issue as a subscriber receives it
issue-check = Check
issue-check-clean = herald check finds nothing to change in this issue.
issue-check-errors = { $count ->
    [one] One error: every send refuses this issue until it is fixed (or its rule allowed).
   *[other] { $count } errors: every send refuses this issue until they are fixed (or their rules allowed).
}
issue-check-severity = { $severity ->
    [error] error
   *[other] warning
}
issue-check-line = line { $line }, column { $column }
issue-file-gone = The issue's file is no longer in the issues folder.

send-title = Send { $title }?
send-back = ← Back to the issue
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

bounces-lookup-label = One subscriber's history
bounces-lookup-placeholder = reader@example.org
bounces-lookup-button = Show
bounces-reactivate = Reactivate
bounces-complained = Complained: only their own new sign-up with double opt-in brings them back.
bounces-none-for-subscriber = No returned mail for this subscriber.
bounces-latest = Latest
bounces-none = No returned mail yet.
bounces-received = received
bounces-kind = kind
bounces-issue = issue
bounces-subscriber = subscriber
bounces-code = code
bounces-reason = reason
bounces-effect = effect
bounces-diagnostic = diagnostic
bounces-hard = (hard)
bounce-kind = { $kind ->
    [bounce] bounce
    [delay] delay
    [complaint] complaint
    [auto-reply] auto-reply
    [delivered] delivered
   *[other] { $kind }
}
# Why a copy came back; the variant keys are herald's reason names with spaces as hyphens.
bounce-reason = { $reason ->
    [unknown-user] unknown user
    [unknown-domain] unknown domain
    [mailbox-moved] mailbox moved
    [domain-accepts-no-mail] domain accepts no mail
    [mailbox-full] mailbox full
    [mailbox-disabled] mailbox disabled
    [rate-limited] rate limited
    [no-reverse-dns] no reverse dns
    [authentication-failed] authentication failed
    [virus-detected] virus detected
    [message-too-large] message too large
    [relaying-denied] relaying denied
    [sender-rejected] sender rejected
    [blocked] blocked
    [content-or-policy] content or policy
    [expired] expired
    [network-error] network error
    [system-error] system error
    [protocol-error] protocol error
    [complaint] complaint
    [auto-reply] auto-reply
    [delivered] delivered
   *[other] { $reason }
}
# What herald did about it.
bounce-effect = { $effect ->
    [bounced] bounced
    [complained] complained
    [counted] counted
    [recorded] recorded
   *[other] { $effect }
}
bounces-not-found = No subscriber has that address.
bounces-error-complained = This subscriber complained (marked the newsletter as spam); only their own new sign-up with double opt-in can bring them back.
bounces-error-not-bounced = This subscriber is { $status }, not bounced.

notice-test-sent = The test copy was accepted by the relay.
notice-sending = The issue is being sent.
notice-requeued = The failed deliveries that may succeed were put back in the queue.
notice-nothing-to-retry = There were no failed deliveries to retry.
notice-reactivated = The subscriber is active again.

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
dashboard-error-draft = { $slug } is a draft ({ $line } in its front matter): remove that line to send it.
dashboard-error-issue-file = The issue file has a problem: { $problem }
dashboard-error-check = { $slug } was not sent: herald check finds an error in it. { $finding }. Fix the file (or allow the rule in [check] allow), then send again.

# The subscriber page (/admin/subscribers)
dashboard-nav-subscribers = Subscribers
subscribers-title = Subscribers
subscribers-all = in all
subscribers-search-label = Address or name
subscribers-search-placeholder = reader@example.org or Ada
subscribers-status-label = Status
subscribers-any-status = any status
subscribers-search-button = Search
subscribers-clear = Clear
subscribers-showing = { $from }–{ $to } of { $total }
subscribers-none = No subscriber matches.
subscribers-empty = No subscribers yet: add one below or import a CSV file.
subscribers-col-email = Address
subscribers-col-name = Name
subscribers-col-status = Status
subscribers-col-source = Source
subscribers-col-joined = Joined
subscribers-col-actions = Actions
subscribers-erase = Erase…
subscribers-pages = Pages
subscribers-previous = ← Previous
subscribers-next = Next →
subscribers-page = Page { $page } of { $pages }
subscribers-add = Add a subscriber
subscribers-add-email = Address
subscribers-add-name = Name (optional)
subscribers-add-button = Add
subscribers-import = Import a CSV file
subscribers-import-help = The header row names the columns: { $email } is required; { $name } and { $status } are optional; other columns become attributes. Addresses already on the list are skipped, and each rejected row is reported with its line number.
subscribers-import-file = CSV file
subscribers-import-button = Import
subscribers-import-no-file = Choose a CSV file to import.
subscribers-export = Export
subscribers-export-help = Everything held about every subscriber, with their consent record, as a CSV file.
subscribers-export-button = Download CSV
subscribers-notice-added = The subscriber was added.
subscribers-notice-erased = The subscriber was erased.
subscribers-notice-erased-not-held = No subscriber held that address; it is now blocked from later imports.
subscribers-erase-tick = Tick the confirmation box to erase the subscriber.
erase-title = Erase { $email }?
erase-back = ← All subscribers
erase-heading = Erase { $email }?
erase-held = On the list as { $status } since
erase-held-named = { $name }, on the list as { $status } since
erase-not-held = No subscriber holds this address. Erasing it still blocks it from later imports.
erase-explain = Erasure cannot be undone: the subscriber and their deliveries are deleted, and their events lose every detail that names them. A keyed hash of the address is kept, so no import adds it back; only their own new sign-up does.
erase-confirm = Yes, erase this subscriber for good
erase-button = Erase
import-title = Import report
import-refused = The file was not imported: { $reason }
import-imported = imported
import-duplicates = skipped as already on the list
import-rejected = rejected
import-rejections = Rejected rows
import-line = Line
import-reason = Reason
import-to-list = Back to the subscribers

# The issues list and an issue's page
home-manage-subscribers = Search, add, import or export subscribers →
home-issues-unsent = Not sent yet
home-issues-sent = Sent
home-draft-note = A draft: nothing sends it until draft: true is removed from its front matter.
home-scheduled-for = The schedule sends it on
home-unsent-note = The schedule will not send it by itself: send it by hand.
issue-when-started = Started
issue-when-finished = finished
send-refused-draft = This issue is a draft (draft: true in its front matter): remove that line to send it.
send-refused-sent = This issue has been sent: there is nothing more to send.

# The live nodes on the home page
home-nodes = Nodes
home-nodes-live = Every herald process on this database whose heartbeat is at most { $seconds } seconds old, with the copies each has sent.
home-nodes-none = No herald process has written a heartbeat in the last { $seconds } seconds.
node-id = Node
node-role = Role
node-started = Started
node-last-seen = Last heartbeat
node-sent = Copies sent
node-seen-ago = { $seconds } s ago
node-role-name = { $role ->
    [web] web
    [worker] worker
    [send] herald send
   *[all] web and worker
}

# The issue report (the issue page) and the latest issues side by side (the home page).
home-latest = Latest issues
report-heading = Report
report-sent = sent
report-failed = failed
report-bounced = bounced
report-unsubscribes = unsubscribed
report-clicks = clicks
report-unique-clickers = readers who clicked
report-click-rate = click rate
report-opens = opens
report-unique-openers = readers who opened
report-machine-opens = machine opens
report-machine-note = Fetches by privacy proxies and scanners, or within seconds of sending: not people reading.
report-tracking-off = Click and open tracking are off ({ $key } in the settings): deliveries, bounces, complaints and unsubscribes are still counted.
report-not-started = The chart starts when the send does.
report-top-links = Top links
report-link = Link
report-link-total = Clicks
report-link-unique = Readers
# A download link of the report; $format is CSV or JSON.
report-download = Download as { $format }
report-chart-title = Clicks, unsubscribes and bounces per hour in the first 72 hours after the send started
report-chart-clicks = Clicks
report-chart-unsubscribes = Unsubscribes
report-chart-bounces = Bounces
# An axis label: hours after the send started.
report-chart-hours = { $hours }h
report-chart-peak = most in one hour: { $count }
