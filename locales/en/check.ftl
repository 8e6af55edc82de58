# herald check's findings, in English: what each rule found (check-RULE...) and how to fix
# it (...-hint). `herald check`, its JSON, the API and `herald preview --serve` use these;
# the dashboard uses newsletter.locale's.
#
# Variables: $target, $url, $file, $host, $text, $phrase are quoted as found in the issue;
# $width, $limit, $kb, $images, $characters, $per_image, $level, $previous are numbers.

## Files that cannot be used, and issues that cannot be rendered ($reason is the error)

check-issue-invalid = { $reason }
check-issue-invalid-hint = fix the file: no send can use it as it is
check-render-failed = { $reason }
check-render-failed-content-hint = simplify the body: it nests too deeply to be laid out
check-render-failed-hint = fix the templates or settings named above

## The front matter and the issue's place among the others

check-slug-duplicate = the slug { $slug } is also the slug of { $others }: the ledger, the archive and the API would mix them up
check-slug-duplicate-hint = give each issue its own slug (front matter `slug:`, else the file name)
check-subject-long = the subject is { $width } columns long; inboxes show about { $limit } (a CJK character takes two)
check-subject-long-hint = put the point first, or set a shorter `subject:` in the front matter
check-description-missing = no description: the inbox preview shows whatever text the mail starts with
check-description-missing-hint = add `description:` (or `preheader:`) to the front matter: one sentence that makes readers open it
# $field is the front matter field: preheader or description.
check-description-long = the inbox preview ({ $field }) is { $width } columns long; inboxes show about { $limit }
check-description-long-hint = shorten it to one sentence, or set a short `preheader:` beside the description
check-not-scheduled-undated = the issue has no date, so the scheduler will never send it on its own
check-not-scheduled-undated-hint = add `date:` to the front matter, or send it by hand (herald send, the API or the dashboard)
# $date and $last_date are YYYY-MM-DD; $last is the last issue's slug.
check-not-scheduled-early = dated { $date }, not after { $last } ({ $last_date }), the last issue sent: the scheduler will never send it on its own
check-not-scheduled-early-hint = date it after the last issue sent, or send it by hand
check-draft = the issue is a draft: no send takes it, and the scheduler skips it
check-draft-hint = remove `draft: true` when it is ready

## How the Markdown reads once rendered ($marker is ** or __)

check-literal-emphasis-space-after-opening = `{ $marker }` shows as literal characters: the opening one is followed by a space
check-literal-emphasis-space-before-closing = `{ $marker }` shows as literal characters: the closing one follows a space
# $written is the pair as written, $fixed as it should be.
check-literal-emphasis-space-quoted-hint = write `{ $fixed }` for `{ $written }`: the markers go right against the words
check-literal-emphasis-space-hint = move the spaces outside the markers: `{ $marker }text{ $marker } ` rather than `{ $marker }text { $marker }`
check-literal-emphasis-flanking = `{ $marker }` shows as literal characters: a marker between a letter and punctuation is not read as emphasis (CommonMark's flanking rule)
check-literal-emphasis-flanking-hint = put a space on the outer side of the markers (`text { $marker }《title》{ $marker } text`), or write <strong>…</strong>
check-literal-emphasis-pair = `{ $marker }` shows as literal characters: CommonMark does not read this pair as emphasis
check-literal-emphasis-pair-hint = put the markers right against the words they emphasise, with a space or punctuation outside them
check-literal-emphasis-alone = `{ $marker }` shows as literal characters: it has no partner in its paragraph
# $char is the marker's character, * or _.
check-literal-emphasis-alone-hint = close the emphasis with a matching `{ $marker }`, or escape the characters (\{ $char })
# $removed lists what the sanitiser removes (<script>, onclick=, ...).
check-html-removed = the sanitiser removes { $removed }
check-html-removed-hint = mail keeps only safe markup: write it in Markdown, or drop what is removed
check-image-alt = the image { $target } has no alt text
check-image-alt-hint = say what the image shows: ![what it shows](path); readers with images off or a screen reader get only this
# $marks is the heading's Markdown (##).
check-heading-skip = a level-{ $level } heading follows level { $previous }, skipping a level
check-heading-skip-hint = use { $marks } (the issue's title is level 1)
check-link-text = the link text { $text } says nothing about where it leads
check-link-text-hint = name the destination in the link text: [the release notes](…) rather than [click here](…)
check-link-bare-url = a bare URL as link text: { $text }
check-link-bare-url-hint = give the link words that say where it leads: [the project page](URL)

## Where links and images lead

check-link-unresolvable-empty = the link to { $target } leads nowhere: an empty target; the mail drops it
# $error is the URL parser's reason.
check-link-unresolvable-not-url = the link to { $target } leads nowhere: it is not a URL ({ $error }); the mail drops it
check-link-unresolvable-scheme = the link to { $target } leads nowhere: its scheme { $scheme }: is not one a mail may link to (http, https, mailto); the mail drops it
check-link-unresolvable-hint = write an absolute http(s) URL, or a path relative to base_url
check-link-unresolvable-relative = the relative link { $target } resolves to { $url }, which herald does not serve (no page, and no file { $file } in assets_dir)
check-link-unresolvable-relative-hint = link to the absolute URL of the page, or put the file in assets_dir
check-asset-missing = the image { $target } is not in assets_dir: no file { $file }
check-asset-missing-hint = add the file to newsletter.assets_dir, or fix the path (relative to base_url)
check-link-local-image = the image { $url } points at { $host }, which readers cannot reach
check-link-local-link = the link { $url } points at { $host }, which readers cannot reach
check-link-local-hint = use the public URL (base_url is a public host, so this mail goes to real readers)

## The rendered mail as a whole

check-gmail-clipping = the HTML part is { $kb } KB; Gmail clips a message at 102 KB and hides the rest, the unsubscribe link included
check-gmail-clipping-hint = split the issue, or move long parts (logs, tables) to the web and link to them
check-images-over-text =
    { $images ->
        [one] 1 image
       *[other] { $images } images
    } and { $characters } characters of text: most of this mail is in images, which readers with images off do not see and spam filters distrust
check-images-over-text-hint = write the message as text, with at least { $per_image } characters per image

## What spam filters score

check-spam-subject-caps = the subject is in capitals, which spam filters score (SUBJ_ALL_CAPS)
check-spam-subject-caps-hint = write the subject in sentence case
# $found is the run of marks, quoted ("!!").
check-spam-subject-punctuation = the subject has { $found }, which spam filters score (PLING_QUERY and friends)
check-spam-subject-punctuation-hint = one mark at most
check-spam-phrase-subject = the subject says { $phrase }, a phrase spam filters score
check-spam-phrase-text = the text says { $phrase }, a phrase spam filters score
check-spam-phrase-hint = say it another way
check-spam-shortener = the link goes through the URL shortener { $host }, which spam filters distrust
check-spam-shortener-hint = link to the destination itself
check-spam-ip-link = { $url } names a numeric address, which spam filters score (NUMERIC_HTTP_ADDR)
check-spam-ip-link-hint = use the host name
check-spam-link-mismatch = the link text shows { $shown } but the link goes to { $target }: filters read this as phishing
check-spam-link-mismatch-hint = make the text and the target agree, or use words as the link text
