# herald's words for readers, in English: the sign-up pages, the notice mails, the issue
# mail's own chrome, the archive and the error pages. English is the reference catalog:
# every other locale falls back to it for a message it lacks.
#
# Variables: $newsletter is newsletter.name; $name a reader's name; $url a link;
# $count, $days and $seconds are numbers and choose the plural form.

## Dates: chrono strftime patterns; month and weekday names come from the locale.

date-long = %A, %-d %B %Y
date-short = %-d %B %Y
datetime-short = %a %-d %b %Y, %H:%M %Z

## The issue mail's chrome (HTML and plain text)

mail-view-in-browser = View in your browser
mail-unsubscribe = Unsubscribe
mail-text-view-in-browser = View in your browser: { $url }
mail-text-unsubscribe = Unsubscribe: { $url }
mail-text-archive = Past issues: { $url }
# The heading above the numbered list of links at the end of the plain-text part.
mail-text-links = Links
mail-text-image = { "[" }image]
mail-text-image-alt = { "[" }image: { $alt }]

## Greetings of the notice mails

greeting = Hello,
greeting-named = Hello { $name },

## The confirmation mail (double opt-in)

confirm-subject = Confirm your subscription to { $newsletter }
confirm-preheader = One click to confirm, and you are on the list.
confirm-heading = Please confirm your subscription
confirm-intro = Thank you for signing up to { $newsletter }. To start receiving it, confirm that this address is yours with the button below.
confirm-intro-text = Thank you for signing up to { $newsletter }. To start receiving it, confirm that this address is yours by opening this link:
confirm-button = Confirm my subscription
confirm-expiry = { $days ->
    [one] The link works for one day.
   *[other] The link works for { $days } days.
} If you did not sign up, ignore this mail: without a confirmation you will receive nothing more.

## The welcome mail

welcome-subject = Welcome to { $newsletter }
welcome-preheader = You are on the list.
welcome-heading = Welcome to { $newsletter }
welcome-body = Your subscription is confirmed. The next issue will reach you at this address.
welcome-archive-link = Meanwhile, past issues are in the archive.

## Pages

# The <title> of a page: the page's heading, then the newsletter.
page-title = { $page } · { $newsletter }

signup-title = Subscribe · { $newsletter }
signup-title-error = Error: Subscribe · { $newsletter }
signup-heading = Subscribe to { $newsletter }
signup-intro = Each issue by email. We will send you a link to confirm your address first.
signup-archive-link = Read past issues in the archive
signup-error-summary = There is a problem with the form: please see the field marked below.
signup-email-label = Email address
signup-name-label = Name
signup-optional = (optional)
signup-honeypot-label = Leave this field empty
signup-button = Subscribe
# Shown above the button and kept with every sign-up, unless newsletter.consent is set.
signup-consent = I would like to receive this newsletter by email. I can unsubscribe at any time with the link at the bottom of every issue.
# Added to the consent text while click or open tracking is on, unless tracking.notice is set.
signup-consent-tracking = Issues count which links readers follow and whether they are opened, to see what readers find useful; no third party is involved.

signup-error-email-empty = Please enter your email address.
signup-error-email-too-long = This email address is too long: it can have at most 254 characters.
signup-error-email-character = An email address cannot contain spaces or line breaks.
signup-error-email-at = An email address needs exactly one @ between a name and a domain, as in jane@example.org.
signup-error-email-local-too-long = The part before the @ is too long: it can have at most 64 characters.
signup-error-email-local = The part before the @ is not a valid mailbox name.
signup-error-email-domain = The part after the @ of this email address is not a valid domain, as in example.org.
signup-error-name-character = The name cannot be used: it contains a line break or another control character.
signup-error-name-too-long = The name cannot be used: it can have at most { $max } characters.
signup-error-name-invisible = The name cannot be used: it contains an invisible character that changes how text is shown.
signup-unavailable = Sign-ups cannot be recorded right now. Please try again in a few minutes.
signup-json-unsupported = Send the form as application/x-www-form-urlencoded or application/json.
signup-json-invalid = The body is not a JSON object with the fields email and name.

thanks-heading = Please check your inbox
thanks-body = Thank you. We have sent you an email with a link: open it to confirm your address and complete your subscription.
thanks-spam = If nothing arrives within a few minutes, look in your spam folder, or sign up again after ten minutes.
thanks-hint = If you are already subscribed, nothing changes.
# The JSON answer to an accepted sign-up.
thanks-json = Thank you. Please check your inbox and confirm your address to complete your subscription.

rate-limit-heading = Please wait a moment
rate-limit-body = { $seconds ->
    [one] Too many sign-ups from your network. Please try again in one second.
   *[other] Too many sign-ups from your network. Please try again in { $seconds } seconds.
}

confirm-page-title = Confirm your subscription · { $newsletter }
confirm-page-heading = Confirm your subscription to { $newsletter }
confirm-page-body = Press the button to start receiving { $newsletter } at this address.
confirm-page-button = Confirm my subscription
confirm-page-note = Did not sign up? Close this page: without a confirmation you will receive nothing.
confirmed-heading = You are subscribed
confirmed-body = Thank you: your address is confirmed, and { $newsletter } will reach you with its next issue.
confirmed-hint = Every issue has a link to unsubscribe at the bottom.
confirmed-archive-link = Read past issues
confirm-expired-heading = This confirmation link has expired
confirm-expired-body = { $days ->
    [one] Confirmation links work for one day.
   *[other] Confirmation links work for { $days } days.
} Please sign up again: you will get a new link straight away.
confirm-not-pending-heading = Nothing to confirm
confirm-not-pending-body = This address left the list after this link was sent, so the link no longer applies. To receive the newsletter again, please sign up again.
subscription-gone-heading = This subscription no longer exists
subscription-gone-body = The address this link was sent to has been removed from the list.
link-sign-up = Sign up
link-sign-up-again = Sign up again

unsubscribe-title = Unsubscribe · { $newsletter }
unsubscribe-heading = Unsubscribe from { $newsletter }
unsubscribe-question = Stop receiving { $newsletter }?
unsubscribe-question-address = Stop sending { $newsletter } to { $address }?
unsubscribe-button = Unsubscribe
unsubscribe-note = It takes effect at once. You will get no further issues.
unsubscribe-generic-heading = Unsubscribe
unsubscribe-generic-body = To unsubscribe, use the unsubscribe link at the bottom of any issue you received by email: it is personal to your address.
unsubscribed-title = You are unsubscribed · { $newsletter }
unsubscribed-heading = You are unsubscribed
unsubscribed-body = You will not receive { $newsletter } any more.
unsubscribed-mistake = Unsubscribed by mistake? Press the button and we will send you a mail to confirm your address.
unsubscribed-later = Changed your mind later? You will be asked to confirm your address again.
resubscribe-button = Resubscribe
resubscribe-sent-heading = Please check your inbox
resubscribe-sent-body = We have sent you a mail with a link: open it to confirm that you want to receive { $newsletter } again.
resubscribe-refused-heading = This address cannot be resubscribed from here
resubscribe-refused-body = Please sign up again with the form; you will be asked to confirm your address.
test-copy-heading = This was a test copy
test-copy-body = The link came from a test or preview copy of the newsletter, which is not sent to anyone on the list, so there is nothing to unsubscribe from.

archive-title = Archive · { $newsletter }
archive-heading = { $newsletter }: past issues
archive-empty = No issues have been sent yet.
archive-feed = Atom feed
archive-signup-link = Sign up
feed-subtitle = Past issues of { $newsletter }

## Error pages

error-bad-link-heading = This link does not work
error-bad-link-body = It may have been cut short or changed when it was copied. Please use the link exactly as it appears in the email.
error-not-found-heading = Page not found
error-not-found-body = There is nothing at this address.
error-too-large-heading = Too much to send
error-too-large-body = What was sent is larger than this page accepts. Please shorten it and try again.
error-method-heading = This page cannot do that
error-method-body = The page was asked for in a way it does not answer. Please go back and use its links and buttons.
error-internal-heading = Something went wrong
error-internal-body = We could not complete your request. Please try again in a few minutes.
