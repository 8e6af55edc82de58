# herald check 的检查结果（简体中文）：每条规则发现了什么（check-规则…），以及怎样改（…-hint）。
# 仪表盘按 newsletter.locale 显示；herald check 命令、它的 JSON、API 和 herald preview --serve 用英文。
#
# 变量：$target、$url、$file、$host、$text、$phrase 照期刊里的原样引用；
# $width、$limit、$kb、$images、$characters、$per_image、$level、$previous 是数字。

## 不能用的文件，以及无法渲染的期刊（$reason 是英文的出错原因）

check-issue-invalid = 这个文件不能作为一期使用：{ $reason }
check-issue-invalid-hint = 请修改文件：现在的样子无法发送
check-render-failed = 这一期无法渲染成邮件：{ $reason }
check-render-failed-content-hint = 请简化正文：嵌套太深，无法排版
check-render-failed-hint = 请修改上面提到的模板或设置

## 前置元数据，以及这一期与其他各期的关系

check-slug-duplicate = 短名 { $slug } 与 { $others } 重复：发送记录、往期归档和 API 会把它们混在一起
check-slug-duplicate-hint = 给每一期一个自己的短名（前置元数据里的 `slug:`，否则取文件名）
check-subject-long = 主题宽 { $width } 列；收件箱大约只显示 { $limit } 列（一个中日韩字符占两列）
check-subject-long-hint = 把要点放在前面，或在前置元数据里设一个更短的 `subject:`
check-description-missing = 没有摘要：收件箱的预览会显示邮件开头的任意文字
check-description-missing-hint = 在前置元数据里加上 `description:`（或 `preheader:`）：一句让读者想打开的话
check-description-long = 收件箱预览（{ $field }）宽 { $width } 列；收件箱大约只显示 { $limit } 列
check-description-long-hint = 缩短成一句话，或在摘要旁另设一个简短的 `preheader:`
check-not-scheduled-undated = 这一期没有日期，定时发送永远不会自动发出它
check-not-scheduled-undated-hint = 在前置元数据里加上 `date:`，或手动发送（herald send、API 或仪表盘）
check-not-scheduled-early = 日期为 { $date }，不晚于最近发出的一期 { $last }（{ $last_date }）：定时发送永远不会自动发出它
check-not-scheduled-early-hint = 把日期改到最近发出的一期之后，或手动发送
check-draft = 这一期是草稿：任何发送都不会取用它，定时发送也会跳过它
check-draft-hint = 准备好后删去 `draft: true`

## Markdown 渲染后的效果（$marker 是 ** 或 __）

check-literal-emphasis-space-after-opening = `{ $marker }` 会原样显示出来：开头的标记后面跟着空格
check-literal-emphasis-space-before-closing = `{ $marker }` 会原样显示出来：结尾的标记前面有空格
check-literal-emphasis-space-quoted-hint = 把 `{ $written }` 写成 `{ $fixed }`：标记要紧贴文字
check-literal-emphasis-space-hint = 把空格移到标记外面：写成 `{ $marker }文字{ $marker } ` 而不是 `{ $marker }文字 { $marker }`
check-literal-emphasis-flanking = `{ $marker }` 会原样显示出来：夹在文字和标点之间的标记不算强调（CommonMark 的定界规则）
check-literal-emphasis-flanking-hint = 在标记外侧加一个空格（`文字 { $marker }《书名》{ $marker } 文字`），或写成 <strong>…</strong>
check-literal-emphasis-pair = `{ $marker }` 会原样显示出来：CommonMark 不把这一对标记当作强调
check-literal-emphasis-pair-hint = 让标记紧贴要强调的文字，标记外侧是空格或标点
check-literal-emphasis-alone = `{ $marker }` 会原样显示出来：它在本段里没有配对的标记
check-literal-emphasis-alone-hint = 用一个相同的 `{ $marker }` 结束强调，或转义这些字符（\{ $char }）
check-html-removed = 安全过滤会删去 { $removed }
check-html-removed-hint = 邮件只保留安全的标记：请改用 Markdown 书写，或删去会被移除的部分
check-image-alt = 图片 { $target } 没有替代文字
check-image-alt-hint = 说明图片的内容：![图片的内容](路径)；关闭图片的读者和读屏软件只能看到这段文字
check-heading-skip = { $level } 级标题紧跟在 { $previous } 级标题后面，跳过了一级
check-heading-skip-hint = 改用 { $marks }（这一期的标题算第 1 级）
check-link-text = 链接文字 { $text } 没有说明链接指向哪里
check-link-text-hint = 在链接文字里写出目的地：[发布说明](…) 而不是 [点击这里](…)
check-link-bare-url = 链接文字是一个裸网址：{ $text }
check-link-bare-url-hint = 用文字说明链接指向哪里：[项目主页](URL)

## 链接和图片指向哪里

check-link-unresolvable-empty = 指向 { $target } 的链接无处可去：目标为空；邮件会去掉它
check-link-unresolvable-not-url = 指向 { $target } 的链接无处可去：它不是网址（{ $error }）；邮件会去掉它
check-link-unresolvable-scheme = 指向 { $target } 的链接无处可去：邮件不能链接到 { $scheme }: 协议（只能用 http、https、mailto）；邮件会去掉它
check-link-unresolvable-hint = 写一个以 http(s) 开头的完整网址，或相对于 base_url 的路径
check-link-unresolvable-relative = 相对链接 { $target } 解析为 { $url }，herald 不提供这个地址（没有这个页面，assets_dir 里也没有文件 { $file }）
check-link-unresolvable-relative-hint = 链接到该页面的完整网址，或把文件放进 assets_dir
check-asset-missing = 图片 { $target } 不在 assets_dir 里：没有文件 { $file }
check-asset-missing-hint = 把文件加到 newsletter.assets_dir，或修正路径（相对于 base_url）
check-link-local-image = 图片 { $url } 指向 { $host }，读者无法访问
check-link-local-link = 链接 { $url } 指向 { $host }，读者无法访问
check-link-local-hint = 改用公开网址（base_url 是公网主机，这封邮件会发给真实读者）

## 整封邮件

check-gmail-clipping = HTML 部分有 { $kb } KB；Gmail 在 102 KB 处截断邮件并隐藏其余内容，包括退订链接
check-gmail-clipping-hint = 把这一期拆开，或把长的部分（日志、表格）放到网页上再链接过去
check-images-over-text = { $images } 张图片，只有 { $characters } 个字的文字：这封邮件大部分是图片，关闭图片的读者看不到，垃圾邮件过滤器也不信任
check-images-over-text-hint = 用文字写内容，每张图片至少配 { $per_image } 个字

## 垃圾邮件过滤器会扣分的内容

check-spam-subject-caps = 主题全是大写字母，垃圾邮件过滤器会扣分（SUBJ_ALL_CAPS）
check-spam-subject-caps-hint = 主题只在句首大写
check-spam-subject-punctuation = 主题里有 { $found }，垃圾邮件过滤器会扣分（PLING_QUERY 等规则）
check-spam-subject-punctuation-hint = 最多用一个标点
check-spam-phrase-subject = 主题里有 { $phrase }，这是垃圾邮件过滤器会扣分的说法
check-spam-phrase-text = 正文里有 { $phrase }，这是垃圾邮件过滤器会扣分的说法
check-spam-phrase-hint = 换一种说法
check-spam-shortener = 链接经过短网址服务 { $host }，垃圾邮件过滤器不信任它
check-spam-shortener-hint = 直接链接到目的地
check-spam-ip-link = { $url } 用的是数字 IP 地址，垃圾邮件过滤器会扣分（NUMERIC_HTTP_ADDR）
check-spam-ip-link-hint = 改用主机名
check-spam-link-mismatch = 链接文字显示的是 { $shown }，链接却指向 { $target }：过滤器会当作钓鱼
check-spam-link-mismatch-hint = 让文字和链接目标一致，或用普通文字作链接文字
