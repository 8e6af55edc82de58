# herald 管理后台的文字（简体中文）：编辑在 /admin 下看到的内容。
#
# $at、$finished、$token、$issue 等变量可能是模板生成的标记（链接、<code>、<time>），
# 按句子需要放在合适的位置即可。

dashboard = 管理后台
dashboard-brand = 管理后台
dashboard-log-out = 退出登录
dashboard-back = 返回管理后台
dashboard-nav-bounces = 退信与投诉

login-title = 登录
login-token-label = 管理令牌
login-button = 登录
login-help = 令牌即 { $token } 的值，或 { $token_file } 所指文件（默认为 { $default_file }）的内容；{ $serve } 启动时会显示该文件的路径。
login-wrong-token = 管理令牌不正确。
login-throttled = 此地址输错令牌的次数过多，请在 { $seconds } 秒后再试。

home-subscribers = 订阅者
home-subscribers-total = 总计
home-schedule = 定时发送
home-next-run = 下次自动发送时间：{ $at }。
home-next-issue = 届时将发送{ $issue }。
home-nothing-due = 届时没有需要发送的内容：在那之前，没有比上一期更新的未发送期刊。
home-schedule-off = 定时发送已关闭（{ $key }），只有手动发送时才会发出。
home-issues = 各期
home-no-issues = 存放各期的文件夹中还没有任何文件。
refresh = 刷新
progress = { $done } / { $total }（{ $percent }%）

subscriber-status = { $status ->
    [pending] 待确认
    [active] 已订阅
    [unsubscribed] 已退订
    [bounced] 已退信
    [complained] 已投诉
   *[other] { $status }
}
issue-status = { $status ->
    [draft] 草稿
    [scheduled] 已排期
    [unsent] 未发送
    [queued] 排队中
    [sending] 发送中
    [retry] 待重试
    [sent] 已发送
    [failed] 失败
    [skipped] 已跳过
    [cancelled] 已取消
   *[other] { $status }
}

issue-all-issues = ← 返回各期列表
issue-throttled = 因对方服务器限流而放慢了发送：
issue-throttled-group = { $group } 每秒 { $rate } 封
issue-bounced-hard = 硬退信
issue-bounced-soft = 软退信
issue-complaints = 投诉
issue-test-label = 发送测试邮件至
issue-test-placeholder = you@example.org
issue-test-button = 发送测试邮件
issue-send-button = 立即发送…
issue-retry-button = 重试失败的投递
issue-preview = 预览
issue-preview-title = 订阅者收到的邮件效果
issue-check = 检查
issue-check-clean = 检查没有发现这一期需要修改的地方。
issue-check-errors = { $count } 个错误：修正之前（或在设置中允许该规则），任何发送都会拒绝这一期。
issue-check-severity = { $severity ->
    [error] 错误
   *[other] 警告
}
issue-check-line = 第 { $line } 行，第 { $column } 列
issue-file-gone = 存放各期的文件夹中已找不到本期的文件。

send-title = 发送《{ $title }》？
send-back = ← 返回本期
send-heading = 确定发送《{ $title }》吗？
send-audience = 本期将发给所有已订阅的读者：目前共 { $count } 位。
send-again = 本期之前已发送过（{ $status }）：只有尚未收到的订阅者会收到，不会有人重复收到。
send-confirm = 确定发送给 { $count } 位订阅者
send-button = 立即发送

bounces-lookup-label = 查看某位订阅者的记录
bounces-lookup-placeholder = reader@example.org
bounces-lookup-button = 查看
bounces-reactivate = 恢复订阅
bounces-complained = 已投诉：只有本人重新订阅并再次确认，才能恢复。
bounces-none-for-subscriber = 这位订阅者没有退信记录。
bounces-latest = 最近的退信
bounces-none = 还没有退信。
bounces-received = 收到时间
bounces-kind = 类型
bounces-issue = 期刊
bounces-subscriber = 订阅者
bounces-code = 状态码
bounces-reason = 原因
bounces-effect = 处理结果
bounces-diagnostic = 诊断信息
bounces-hard = （硬退信）
bounce-kind = { $kind ->
    [bounce] 退信
    [delay] 延迟
    [complaint] 投诉
    [auto-reply] 自动回复
    [delivered] 已送达
   *[other] { $kind }
}
bounce-reason = { $reason ->
    [unknown-user] 收件人不存在
    [unknown-domain] 域名不存在
    [mailbox-moved] 邮箱已迁移
    [domain-accepts-no-mail] 该域名不接收邮件
    [mailbox-full] 邮箱已满
    [mailbox-disabled] 邮箱已停用
    [rate-limited] 发送频率受限
    [no-reverse-dns] 缺少反向解析
    [authentication-failed] 身份验证失败
    [virus-detected] 检测到病毒
    [message-too-large] 邮件过大
    [relaying-denied] 拒绝转发
    [sender-rejected] 发件人被拒
    [blocked] 被拦截
    [content-or-policy] 内容或策略原因
    [expired] 投递超时
    [network-error] 网络错误
    [system-error] 系统错误
    [protocol-error] 协议错误
    [complaint] 投诉
    [auto-reply] 自动回复
    [delivered] 已送达
   *[other] { $reason }
}
bounce-effect = { $effect ->
    [bounced] 标记为已退信
    [complained] 标记为已投诉
    [counted] 计入软退信
    [recorded] 仅记录
   *[other] { $effect }
}
bounces-not-found = 没有使用该地址的订阅者。
bounces-error-complained = 该订阅者投诉过（将本刊标记为垃圾邮件），只有本人重新订阅并再次确认，才能恢复。
bounces-error-not-bounced = 该订阅者的状态是“{ $status }”，并非已退信。

notice-test-sent = 邮件服务器已接收测试邮件。
notice-sending = 本期正在发送。
notice-requeued = 可能成功的失败投递已重新排队。
notice-nothing-to-retry = 没有需要重试的失败投递。
notice-reactivated = 该订阅者已恢复订阅。

dashboard-error-login = 请先登录
dashboard-error-forbidden = 请求被拒绝
dashboard-error-forbidden-body = 表单已过期，或并非来自本管理后台，因此未执行任何操作。请返回并刷新页面后重试。
dashboard-error-not-found = 页面不存在
dashboard-error-not-found-body = 此地址没有任何内容。
dashboard-error-bad-request = 操作未能完成
dashboard-error-internal = 出错了
dashboard-error-internal-body = 请求未能完成，原因已记录在 herald 的日志中。
dashboard-error-tick = 请勾选确认框后再发送。
dashboard-error-relay = 邮件服务器未接收测试邮件：{ $reply }
dashboard-error-address = 邮箱地址无效，请检查后重试。
dashboard-error-draft = { $slug } 是草稿（文件开头写有 { $line }），删除这一行后才能发送。
dashboard-error-issue-file = 这一期的文件有问题：{ $problem }
dashboard-error-check = { $slug } 未发送：检查发现了错误。{ $finding }。请修正文件（或在设置中允许该规则）后再发送。

# 订阅者页面（/admin/subscribers）
dashboard-nav-subscribers = 订阅者
subscribers-title = 订阅者
subscribers-all = 全部
subscribers-search-label = 地址或姓名
subscribers-search-placeholder = reader@example.org 或 张三
subscribers-status-label = 状态
subscribers-any-status = 任意状态
subscribers-search-button = 搜索
subscribers-clear = 清除
subscribers-showing = 第 { $from }–{ $to } 位，共 { $total } 位
subscribers-none = 没有匹配的订阅者。
subscribers-empty = 还没有订阅者：可在下方添加，或导入 CSV 文件。
subscribers-col-email = 地址
subscribers-col-name = 姓名
subscribers-col-status = 状态
subscribers-col-source = 来源
subscribers-col-joined = 加入时间
subscribers-col-actions = 操作
subscribers-erase = 删除…
subscribers-pages = 分页
subscribers-previous = ← 上一页
subscribers-next = 下一页 →
subscribers-page = 第 { $page } 页，共 { $pages } 页
subscribers-add = 添加订阅者
subscribers-add-email = 地址
subscribers-add-name = 姓名（可选）
subscribers-add-button = 添加
subscribers-import = 导入 CSV 文件
subscribers-import-help = 首行为列名：{ $email } 必填；{ $name } 和 { $status } 可选；其他列作为附加属性保存。已在名单中的地址会被跳过，每一条被拒绝的行都会连同行号列出。
subscribers-import-file = CSV 文件
subscribers-import-button = 导入
subscribers-import-no-file = 请选择要导入的 CSV 文件。
subscribers-export = 导出
subscribers-export-help = 以 CSV 文件导出每位订阅者的全部资料，包括其同意记录。
subscribers-export-button = 下载 CSV
subscribers-notice-added = 已添加该订阅者。
subscribers-notice-erased = 已删除该订阅者。
subscribers-notice-erased-not-held = 名单中没有这个地址；今后的导入也不会再添加它。
subscribers-erase-tick = 请勾选确认框后再删除该订阅者。
erase-title = 删除 { $email }？
erase-back = ← 全部订阅者
erase-heading = 删除 { $email }？
erase-held = 自以下日期起在名单中，状态为{ $status }：
erase-held-named = { $name }，自以下日期起在名单中，状态为{ $status }：
erase-not-held = 名单中没有这个地址。删除后，今后的导入仍不会添加它。
erase-explain = 删除无法撤销：订阅者及其投递记录会被删除，其事件中可识别本人的信息也会被清除。系统会保留地址的密钥哈希，因此任何导入都不会再添加它；只有本人重新订阅才可以。
erase-confirm = 是的，永久删除该订阅者
erase-button = 删除
import-title = 导入报告
import-refused = 文件未导入：{ $reason }
import-imported = 已导入
import-duplicates = 已在名单中，已跳过
import-rejected = 已拒绝
import-rejections = 被拒绝的行
import-line = 行号
import-reason = 原因
import-to-list = 返回订阅者列表

# 期号列表与单期页面
home-manage-subscribers = 搜索、添加、导入或导出订阅者 →
home-issues-unsent = 尚未发送
home-issues-sent = 已发送
home-draft-note = 这是草稿：在前置元数据中删除 draft: true 之前不会发送。
home-scheduled-for = 定时发送时间：
home-unsent-note = 定时任务不会自动发送它，请手动发送。
issue-when-started = 开始于
issue-when-finished = 完成于
send-refused-draft = 这一期是草稿（前置元数据中有 draft: true）：删除该行后才能发送。
send-refused-sent = 这一期已经发送完毕，没有需要再发送的内容。

# The live nodes on the home page
home-nodes = 节点
home-nodes-live = 使用此数据库、且最近一次心跳在 { $seconds } 秒以内的所有进程，以及每个进程已发送的份数。
home-nodes-none = 最近 { $seconds } 秒内没有任何进程写入心跳。
node-id = 节点
node-role = 角色
node-started = 启动于
node-last-seen = 最近心跳
node-sent = 已发送份数
node-seen-ago = { $seconds } 秒前
node-role-name = { $role ->
    [web] 网页
    [worker] 工作节点
    [send] 命令行发送
   *[all] 网页和工作节点
}

home-latest = 最近几期
report-heading = 报告
report-sent = 已发送
report-failed = 失败
report-bounced = 退信
report-unsubscribes = 退订
report-clicks = 点击
report-unique-clickers = 点击过的读者
report-click-rate = 点击率
report-opens = 打开
report-unique-openers = 打开过的读者
report-machine-opens = 机器打开
report-machine-note = 隐私代理和扫描程序的抓取，或发送后几秒内的抓取：并非真人阅读。
report-tracking-off = 点击和打开统计均已关闭（设置中的 { $key }）：送达、退信、投诉和退订仍会统计。
report-not-started = 开始发送后才有图表。
report-top-links = 热门链接
report-link = 链接
report-link-total = 点击
report-link-unique = 读者
report-download = 下载 { $format } 文件
report-chart-title = 开始发送后 72 小时内每小时的点击、退订和退信
report-chart-clicks = 点击
report-chart-unsubscribes = 退订
report-chart-bounces = 退信
report-chart-hours = { $hours } 小时
report-chart-peak = 单小时最多：{ $count }
