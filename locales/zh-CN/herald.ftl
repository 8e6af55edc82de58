# herald 面向读者的文字（简体中文）：订阅页面、通知邮件、每期邮件的页眉页脚、往期归档和错误页面。
# 标点用全角；中文与西文、数字之间留一个空格。刊物名称用书名号《》括起。
#
# 变量：$newsletter 是刊物名称（newsletter.name）；$name 是读者的称呼；$url 是链接；
# $count、$days、$seconds 是数字。

## 日期：chrono 的 strftime 格式；月份和星期的名称由区域设置提供。

date-long = %Y年%-m月%-d日 %A
date-short = %Y年%-m月%-d日
datetime-short = %Y年%-m月%-d日 周%a %H:%M %Z

## 每期邮件的页眉页脚（HTML 与纯文本）

mail-view-in-browser = 在浏览器中查看
mail-unsubscribe = 退订
mail-text-view-in-browser = 在浏览器中查看：{ $url }
mail-text-unsubscribe = 退订：{ $url }
mail-text-archive = 往期内容：{ $url }
mail-text-links = 文中链接
mail-text-image = { "[" }图片]
mail-text-image-alt = { "[" }图片：{ $alt }]

## 通知邮件的称呼

greeting = 您好：
greeting-named = { $name }，您好：

## 确认订阅邮件（双重确认）

confirm-subject = 请确认订阅《{ $newsletter }》
confirm-preheader = 只差一步：点击确认，即可完成订阅。
confirm-heading = 请确认您的订阅
confirm-intro = 感谢您订阅《{ $newsletter }》！请点击下方按钮，确认这是您本人的邮箱地址，之后就能按期收到新内容。
confirm-intro-text = 感谢您订阅《{ $newsletter }》！请打开下面的链接，确认这是您本人的邮箱地址，之后就能按期收到新内容：
confirm-button = 确认订阅
confirm-expiry = 此链接 { $days } 天内有效。如果您没有订阅过，请忽略本邮件；未经确认，您不会再收到我们的任何邮件。

## 欢迎邮件

welcome-subject = 欢迎订阅《{ $newsletter }》
welcome-preheader = 您已成功订阅。
welcome-heading = 欢迎订阅《{ $newsletter }》
welcome-body = 您的订阅已确认，下一期将发送到这个邮箱。
welcome-archive-link = 在此之前，不妨先看看往期内容。

## 页面

page-title = { $page } - 《{ $newsletter }》

signup-title = 订阅《{ $newsletter }》
signup-title-error = 出错了：订阅《{ $newsletter }》
signup-heading = 订阅《{ $newsletter }》
signup-intro = 每期内容都会发到您的邮箱。提交后，我们会先发一封邮件，请点击其中的链接确认邮箱地址。
signup-archive-link = 在归档中阅读往期内容
signup-error-summary = 表单填写有误，请查看下方标出的栏目。
signup-email-label = 邮箱地址
signup-name-label = 称呼
signup-optional = （选填）
signup-honeypot-label = 此栏请留空
signup-button = 订阅
signup-consent = 我愿意通过电子邮件接收本刊，并可随时通过每期邮件底部的链接退订。
signup-consent-tracking = 本刊会统计读者点击了哪些链接以及邮件是否被打开，以了解哪些内容有用；不涉及任何第三方。

signup-error-email-empty = 请填写邮箱地址。
signup-error-email-too-long = 邮箱地址太长了，最多 254 个字符。
signup-error-email-character = 邮箱地址中不能有空格或换行。
signup-error-email-at = 邮箱地址中需要有且只有一个 @，前面是用户名，后面是域名，例如 jane@example.org。
signup-error-email-local-too-long = @ 前面的部分太长了，最多 64 个字符。
signup-error-email-local = @ 前面的部分不是有效的邮箱用户名。
signup-error-email-domain = @ 后面的部分不是有效的域名，正确的写法如 example.org。
signup-error-name-character = 称呼中不能有换行或其他控制字符。
signup-error-name-too-long = 称呼太长了，最多 { $max } 个字符。
signup-error-name-invisible = 称呼中不能有改变文字显示方向的不可见字符。
signup-unavailable = 暂时无法登记订阅，请过几分钟再试。
signup-json-unsupported = 请以 application/x-www-form-urlencoded 或 application/json 格式提交表单。
signup-json-invalid = 请求内容不是包含 email 和 name 字段的 JSON 对象。

thanks-heading = 请查收确认邮件
thanks-body = 谢谢！我们已向您的邮箱发送了一封带链接的邮件，请打开链接确认邮箱地址，完成订阅。
thanks-spam = 如果几分钟后仍未收到，请查看垃圾邮件文件夹，或在十分钟后重新订阅。
thanks-hint = 如果您已经订阅过，这一操作不会有任何影响。
thanks-json = 谢谢！请查收邮件并确认邮箱地址，以完成订阅。

rate-limit-heading = 请稍候
rate-limit-body = 您所在的网络提交订阅过于频繁，请在 { $seconds } 秒后再试。

confirm-page-title = 确认订阅《{ $newsletter }》
confirm-page-heading = 确认订阅《{ $newsletter }》
confirm-page-body = 点击下方按钮，即可开始通过此邮箱地址接收《{ $newsletter }》。
confirm-page-button = 确认订阅
confirm-page-note = 如果您没有订阅过，请直接关闭本页面；未经确认，您不会收到任何邮件。
confirmed-heading = 订阅成功
confirmed-body = 谢谢！您的邮箱地址已确认，下一期《{ $newsletter }》将发送给您。
confirmed-hint = 每期邮件底部都有退订链接。
confirmed-archive-link = 阅读往期内容
confirm-expired-heading = 确认链接已过期
confirm-expired-body = 确认链接的有效期为 { $days } 天。请重新订阅，我们会立即发送新的确认链接。
confirm-not-pending-heading = 无需确认
confirm-not-pending-body = 这封邮件发出后，该邮箱地址已退订，因此此链接已失效。如需继续接收，请重新订阅。
subscription-gone-heading = 该订阅已不存在
subscription-gone-body = 此链接对应的邮箱地址已从订阅名单中删除。
link-sign-up = 订阅
link-sign-up-again = 重新订阅

unsubscribe-title = 退订《{ $newsletter }》
unsubscribe-heading = 退订《{ $newsletter }》
unsubscribe-question = 确定不再接收《{ $newsletter }》吗？
unsubscribe-question-address = 确定不再向 { $address } 发送《{ $newsletter }》吗？
unsubscribe-button = 确认退订
unsubscribe-note = 退订立即生效，此后您不会再收到新的一期。
unsubscribe-generic-heading = 退订
unsubscribe-generic-body = 如需退订，请点击您收到的任意一期邮件底部的退订链接：该链接与您的邮箱地址一一对应。
unsubscribed-title = 已退订《{ $newsletter }》
unsubscribed-heading = 您已退订
unsubscribed-body = 您将不会再收到《{ $newsletter }》。
unsubscribed-mistake = 误点了退订？点击下方按钮，我们会发送一封邮件请您确认邮箱地址。
unsubscribed-later = 以后改变主意了？重新订阅时需要再次确认邮箱地址。
resubscribe-button = 恢复订阅
resubscribe-sent-heading = 请查收邮件
resubscribe-sent-body = 我们已向您发送一封邮件，请打开其中的链接，确认您希望重新接收《{ $newsletter }》。
resubscribe-refused-heading = 无法在此恢复该邮箱的订阅
resubscribe-refused-body = 请通过订阅表单重新订阅，届时需要再次确认邮箱地址。
test-copy-heading = 这是一封测试邮件
test-copy-body = 此链接来自测试或预览邮件，这类邮件不会发给订阅名单中的任何人，因此无需退订。

archive-title = 往期归档 - 《{ $newsletter }》
archive-heading = 《{ $newsletter }》往期内容
archive-empty = 还没有发出过任何一期。
archive-feed = Atom 订阅源
archive-signup-link = 订阅本刊
feed-subtitle = 《{ $newsletter }》往期内容

## 错误页面

error-bad-link-heading = 此链接无效
error-bad-link-body = 链接可能在复制时被截断或改动了。请使用邮件中的完整链接。
error-not-found-heading = 页面不存在
error-not-found-body = 此地址没有任何内容。
error-too-large-heading = 提交的内容过多
error-too-large-body = 提交的内容超出了此页面能接受的大小，请删减后再试。
error-method-heading = 此页面不支持该操作
error-method-body = 此页面不响应这种请求方式。请返回上一页，使用页面上的链接和按钮。
error-internal-heading = 出错了
error-internal-body = 我们暂时无法完成您的请求，请过几分钟再试。
