"""English texts. Keys are shared with ru.py; tests check both define the same keys and
placeholders."""

TEXTS: dict[str, str] = {
    # buttons of the reply keyboard (matched back by the routers, in every language)
    "kb_presets": "🎨 Styles",
    "kb_size": "📐 Size",
    "kb_run": "▶️ Go",
    "kb_cancel": "❌ Cancel",
    "kb_restart": "🔄 Start over",
    "kb_help": "❓ Help",
    "kb_next_content": "🖼 Next is the photo",
    "kb_next_style": "🖌 Next is the style",
    "kb_my_styles": "⭐ My styles",
    # the bot's profile: "What can this bot do?" before the first /start (at most 512
    # characters) and the short description on its profile and in shared links (at most 120)
    "bot_description": (
        "I repaint your photos, GIFs and short videos in the style of a painting.\n\n"
        "Send a photo, pick a ready-made style (Van Gogh, Munch, Matisse, Hokusai…) or send "
        "your own style picture, and get the result in seconds. Then try another style, a "
        "lighter strength, your own colours, or mix two styles.\n\n"
        "Like a style picture of yours? I can learn it and keep it in ⭐ My styles, only for "
        "you.\n\nTap Start and send a photo."
    ),
    "bot_short_description": (
        "Your photos, GIFs and videos repainted in the style of a painting, or of a picture "
        "of your own."
    ),
    # commands (menu descriptions)
    "cmd_start": "What I do and how to begin",
    "cmd_help": "How to use the bot",
    "cmd_presets": "Pick a ready-made style",
    "cmd_size": "Choose the output size",
    "cmd_language": "Switch language",
    "cmd_result": "Stylize now",
    "cmd_tests": "The same result at every size",
    "cmd_cancel": "Cancel the current job",
    "cmd_restart": "Start over: forget my photos and style",
    "cmd_content": "The next image is the photo to stylize",
    "cmd_style": "The next image is the style",
    # conversation
    "start": (
        "Hi, {name}! I repaint your photos and clips in the style of a painting.\n\n"
        "1. Send a photo — or a GIF, a video or a video note.\n"
        "2. Pick a style in the gallery I show you next, or send your own style picture.\n"
        "That's it: the result comes back with buttons for another style, the strength and "
        "more.\n\n"
        "Like a style picture of yours? Under its result, tap “🧠 Learn this style”: it goes "
        "to ⭐ My styles, ready for your next photos.\n\n"
        "How it all works: /help"
    ),
    "help": (
        "What I take:\n"
        "• photos, or images as files (uncompressed: JPEG, PNG, WebP…);\n"
        "• an album of two images: the photo, then the style;\n"
        "• GIFs, videos and video notes: short clips, every frame stylized (I say the limits "
        "when you send one).\n\n"
        "How it works:\n"
        "• Send the photo, then pick a style (/presets) or send a style picture. In any order; "
        "the caption “style” or “photo” says which is which.\n"
        "• Under a result: another style, the strength, your own colours, the full-quality "
        "file; “More” has sizes, mixing two styles and your photo in every style.\n"
        "• Your own style picture can be learned (“🧠 Learn this style” under its result); "
        "learned styles are in ⭐ My styles (/mystyles), only for you.\n\n"
        "Commands:\n"
        "/presets — ready-made styles\n"
        "/mystyles — the styles you had me learn\n"
        "/size — output size (now {size} px)\n"
        "/result — stylize again · /cancel — cancel the current job\n"
        "/restart — start over: forget my photos and style\n"
        "/language — Русский / English"
    ),
    "unknown_command": "I don't know the command {command}. See /help for what I can do.",
    "text_hint": "Send me a photo to stylize, or a style image. /help explains how.",
    "unsupported_message": (
        "I can't use this. Send a photo or an image file (JPEG, PNG, WebP…), or a clip: a GIF, "
        "a video or a video note."
    ),
    "not_an_image": (
        "“{name}” is not an image ({mime}). Send a photo or an image file "
        "(JPEG, PNG, WebP, BMP, TIFF)."
    ),
    "file_too_large": (
        "This file is {size_mb} MB, but bots can only download files up to {limit_mb} MB. "
        "Send it as a photo (Telegram compresses it) or send a smaller file."
    ),
    "album_bad": (
        "An album should hold exactly two images: the photo first, then the style. "
        "This one has {count} items."
    ),
    "got_content": "🖼 Got the photo. Pick a style below, or send your own style picture.",
    "got_style": "🖌 Got the style image. Now send the photo to stylize.",
    "got_preset": "🎨 Style “{name}” chosen. Now send the photo to stylize.",
    "got_album": "🖼 + 🖌 Got the photo and the style.",
    "ask_role": "Is this image the photo to stylize or the style?",
    "btn_is_content": "🖼 It's the photo",
    "btn_is_style": "🖌 It's the style",
    "btn_swap_to_style": "↔️ No, it's the style",
    "btn_swap_to_content": "↔️ No, it's the photo",
    "btn_presets": "🎨 Ready-made styles",
    "role_expired": "I no longer have that image. Please send it again.",
    "next_content": "OK, the next image will be the photo to stylize.",
    "next_style": "OK, the next image will be the style.",
    "need_content": "First send the photo you want to stylize.",
    "need_style": "Now send a style image or pick a ready-made style: /presets",
    "restart_done": "I forgot your photos and style. Send a new photo to start over.",
    # jobs
    "queued": "⏳ You're number {position} in the queue.",
    "running": "🎨 Styling your photo at {size} px…",
    "running_tests": "🎨 Styling at {sizes} px… ({done} of {total} done)",
    "btn_cancel": "❌ Cancel",
    "cancelled": "❌ Cancelled.",
    "nothing_to_cancel": "There is nothing to cancel.",
    "already_busy": (
        "You already have a job in progress. Wait for the result or /cancel it first."
    ),
    "queue_full": "Too many people are styling right now. Please try again in a minute.",
    "shutting_down": "The bot is restarting. Please try again in a minute.",
    "shutdown_cancelled": (
        "The bot is restarting, so your job was cancelled. It doesn't keep photos across a "
        "restart: in a minute, please send your photo and style again."
    ),
    "shutdown_cancelled_kept": (
        "The bot is restarting, so your job was cancelled. Your photo and style are kept: "
        "send /result in a minute to run it again."
    ),
    "result_expired": (
        "I no longer remember the pictures of that result (I keep your last few). Send the "
        "photo again, or use the buttons under a newer result."
    ),
    "result_caption": "Style: {style} · {width}×{height} px",
    "result_caption_size": "{width}×{height} px",
    "tests_done": "Done: the same picture at {sizes} px.",
    "style_own": "your image",
    "btn_full": "📄 Full-quality file",
    "btn_another_style": "🎨 Another style",
    "btn_size": "📐 {size}",
    # style controls under a result (bot/controls.py)
    "btn_strength": "Strength {pct}%",
    "btn_more": "⋯ More",
    "btn_less": "◀️ Back",
    "btn_colors_off": "🌈 Keep my colours: off",
    "btn_colors_on": "🌈 Keep my colours: on",
    "btn_mix": "➕ Mix with another style",
    "btn_sheet": "🗂 My photo in every style",
    "brush_small": "🖌 Fine brush",
    "brush_medium": "🖌 Medium brush",
    "brush_large": "🖌 Broad brush",
    "ctl_mixed": "mixed with {name}",
    "ctl_strength": "strength {pct}%",
    "ctl_colors_kept": "your colours",
    "ctl_strength_set": "Strength {pct}% — remembered",
    "ctl_colors_on": "Your photo's colours are kept from now on",
    "ctl_colors_off": "The style's colours from now on",
    "ctl_brush_set": "{brush} — remembered",
    "mix_pick": "Pick a style to mix half-and-half with the current one:",
    "got_mix": "“{name}” will be mixed in. Now send a photo.",
    "running_sheet": "🗂 Painting your photo in every style…",
    "sheet_caption": "Your photo in every style. Tap a name to use that style.",
    "result_gone": "I no longer keep that file, so I'm making it again.",
    "full_caption": "Full quality, {width}×{height} px",
    # errors (by the server's error codes and our own failure kinds)
    "which_content": "photo",
    "which_style": "style image",
    "which_unknown": "image",
    "err_corrupt": (
        "Your {which} seems damaged or incomplete — I can't read it. Please send it again."
    ),
    "err_not_image": "Your {which} is not an image I can read. Send a JPEG, PNG or WebP.",
    "err_heic": (
        "Your {which} is an iPhone HEIC picture, which the styling server can't read. Send it "
        "as a photo (Telegram converts it), or on the iPhone choose Settings > Camera > "
        "Formats > Most Compatible."
    ),
    "err_too_large": (
        "Your {which} is too large for the styling server. Send it as a photo (Telegram "
        "compresses it) or send a smaller file."
    ),
    "err_unknown_preset": "The style “{name}” is no longer available. Pick another: /presets",
    "err_bad_option": "The server did not accept these settings. Try another size: /size",
    "err_busy": (
        "The styling server is busy right now (I tried {attempts} {attempts:time|times}). "
        "Please try again in a minute: /result"
    ),
    "err_down": (
        "The styling server is unavailable right now (I tried {attempts} {attempts:time|times}). "
        "Your photos are kept — please try again later: /result"
    ),
    "err_timeout": (
        "The styling server took too long to answer. Try a smaller size (/size) or try again "
        "later: /result"
    ),
    "err_server": "Something went wrong on the styling server. Please try again: /result",
    "err_auth": (
        "The styling server did not accept my access key (it has expired or changed): the "
        "bot's operator needs to renew it. Your photos are kept; please try again later: /result"
    ),
    "err_download": "I couldn't download your {which} from Telegram. Please send it again.",
    "err_file_too_big": (
        "Your {which} is too large for bots to download (over {limit_mb} MB). Send it as a "
        "photo or send a smaller file."
    ),
    "err_result_too_large": (
        "The result ({size_mb} MB) is too large for Telegram to deliver. Choose a smaller "
        "size: /size"
    ),
    "err_internal": "Something went wrong on my side. Please try again: /result",
    "err_flood": (
        "Telegram asked me to slow down, so I couldn't send your result. Please try again "
        "in a minute: /result"
    ),
    "storage_down": (
        "I can't reach my memory (the state store) right now, so I can't take this. "
        "Please try again in a minute."
    ),
    "job_interrupted": (
        "⚠️ I was restarted while your job was running, so it was lost. Your photo and "
        "style are kept: send /result to make it again."
    ),
    # presets gallery
    "presets_empty": "The server has no ready-made styles. Send your own style image instead.",
    "presets_unavailable": (
        "I can't reach the styling server to get the list of styles. Please try again later."
    ),
    "preset_caption": "🎨 {name} ({index} of {total})",
    "preset_no_preview": "(no preview)",
    "btn_use_preset": "✅ Use “{name}”",
    "btn_mix_preset": "➕ Mix in “{name}”",
    "btn_prev": "◀️",
    "btn_next": "▶️",
    "preset_gone": "That style is no longer on the server. Here is the current list: /presets",
    # settings
    "size_menu": (
        "Output size — the longest side in pixels. Larger takes longer. Now: {size} px."
    ),
    "size_set": "Size set to {size} px.",
    "size_unavailable": "The server doesn't offer {size} px now. Pick another size: /size",
    "sizes_unavailable": "I can't reach the styling server to get the sizes. Try again later.",
    "language_menu": "Choose the language:",
    "language_set": "I'll speak English now.",
    # limits
    "rate_limited": "You're sending messages too fast. Please wait a few seconds.",
    "not_allowed": "Sorry, this bot is private.",
    "sender_chat_refused": (
        "Please write as yourself, not anonymously or as a channel: I keep each person's "
        "photos, styles and jobs apart, and a chat's name does not tell people apart."
    ),
    # clips (GIFs, animations, videos, video notes)
    "got_clip": (
        "🎞 Got the clip. I'll stylize up to {frames} {frames:frame|frames} at {clip_size} px "
        "— that takes a while (about a second a frame); I'll show the progress here. Limits: "
        "{max_seconds} s, {max_frames} {max_frames:frame|frames}, {max_fps} fps, {limit_mb} MB."
    ),
    "got_clip_need_style": (
        "🎞 Got the clip (up to {frames} {frames:frame|frames} at {clip_size} px; limits: "
        "{max_seconds} s, {max_frames} {max_frames:frame|frames}, {max_fps} fps, {limit_mb} MB). "
        "Now send a style image or pick one: /presets"
    ),
    "clip_too_long": (
        "This clip is {duration} s long; I can stylize clips up to {max_seconds} s "
        "({max_frames} {max_frames:frame|frames}, {max_fps} fps, {limit_mb} MB). "
        "Send a shorter one."
    ),
    "clip_too_big": (
        "This clip is {size_mb} MB; the limit is {limit_mb} MB (and {max_seconds} s). "
        "Send a shorter or smaller one."
    ),
    "running_clip": "🎞 Styling your clip… {done} of {total} {total:frame|frames} done",
    "clip_caption": "{style} · {frames} {frames:frame|frames}, {size} px",
    "err_clip_too_long": "The styling server refused the clip as too long: {detail}",
    "err_corrupt_clip": (
        "Your clip seems damaged or incomplete — I can't read it ({detail}). "
        "Please send it again."
    ),
    "err_unsupported_codec": (
        "I can't read this clip's format ({detail}). Send a GIF, or an MP4 or WebM video."
    ),
    "err_clip_interrupted": (
        "The styling server stopped while making your clip, so nothing came back. "
        "Send /result to make it again."
    ),
    # learned styles (bot/routers/learned.py, bot/services/learn_job.py)
    "cmd_mystyles": "My learned styles",
    "btn_learn": "🧠 Learn this style (~{seconds} s)",
    "btn_my_styles": "⭐ My styles",
    "btn_apply_learned": "✅ Apply it to my photo",
    "btn_use_learned": "✅ {name}",
    "btn_rename": "✏️ Rename",
    "btn_delete": "🗑 Delete",
    "btn_delete_yes": "🗑 Yes, delete",
    "btn_delete_no": "↩️ Keep it",
    "learn_running": (
        "🧠 Learning your style… it takes about {seconds} s. I'll show the progress here."
    ),
    "learn_progress": "🧠 Learning your style… step {step} of {steps} ({pct}%)",
    "learn_done": (
        "✅ Learned! Your style “{name}” is saved in ⭐ My styles (it took {seconds} s). "
        "Only you can use it. Apply it to your photo now, or rename it in My styles."
    ),
    "learn_unavailable": (
        "This server can't learn new styles (it isn't set up for it). You can still use your "
        "style picture as it is, or a ready-made style: /presets"
    ),
    "learn_not_image": (
        "The styling server couldn't read your style picture as an image, so it can't learn "
        "it. Send the style as a photo or a JPEG/PNG file and try again."
    ),
    "learn_too_large": "Your style picture is too large to learn. Send a smaller one.",
    "learn_store_full": (
        "You already have {count} learned {count:style|styles}, and the limit is {limit}. "
        "Delete one in ⭐ My styles to make room, then tap “Learn this style” again."
    ),
    "learn_store_not_writable": (
        "The server can't save styles right now, so nothing was changed. Please try again "
        "later."
    ),
    "learn_cancelled": "❌ Learning was cancelled; nothing was saved.",
    "learn_busy": (
        "The styling server is busy learning another style. Please try again in a minute."
    ),
    "learn_timeout": (
        "Learning took too long and was stopped; nothing was saved. Please try again later."
    ),
    "learn_failed": (
        "Something went wrong while learning the style; nothing was saved. Please try again."
    ),
    "my_styles": (
        "⭐ My styles ({count} of {limit}). Only you can see and use them:\n{names}"
    ),
    "my_styles_empty": (
        "⭐ You have no learned styles yet. Send a photo and your own style picture, then tap "
        "“🧠 Learn this style” under the result."
    ),
    "learned_gone": "You no longer have a style called “{name}”. Your styles: /mystyles",
    "learned_server_down": (
        "I can't reach the styling server right now. Please try again in a minute."
    ),
    "rename_prompt": (
        "Send the new name for “{name}”: 1–40 characters — lowercase latin letters a-z, "
        "digits 0-9, “-” and “_”, starting with a letter or digit (for example: sunset-2). "
        "/cancel keeps the old name."
    ),
    "rename_invalid": (
        "“{text}” can't be a style name. Use 1–40 characters: lowercase latin letters a-z, "
        "digits 0-9, “-” and “_”, starting with a letter or digit — no spaces, capitals or "
        "other letters (for example: sunset-2). Send another name, or /cancel."
    ),
    "rename_taken": (
        "The name “{name}” is taken (by another of your styles or a ready-made one). Send "
        "another name, or /cancel."
    ),
    "rename_done": "✏️ “{old}” is now called “{name}”.",
    "rename_cancelled": "OK, the name stays “{name}”.",
    "delete_confirm": "Delete your style “{name}”? This can't be undone.",
    "delete_done": "🗑 Deleted “{name}”.",
    "err_learned_stale": (
        "Your style “{name}” was learned for another version of the styling model and can't "
        "be used any more. Learn it again from its picture, or pick another: /mystyles"
    ),
}

# display titles of the presets (the server's names; others are shown as they are)
TITLES: dict[str, str] = {
    "candy": "Candy",
    "composition_vii": "Composition VII — Kandinsky",
    "escher_sphere": "Hand with Reflecting Sphere — Escher",
    "feathers": "Feathers",
    "frida_kahlo": "Self-portrait — Frida Kahlo",
    "la_muse": "La Muse — Picasso",
    "mosaic": "Mosaic",
    "mosaic_ducks_massimo": "Mosaic Ducks",
    "pencil": "Pencil sketch",
    "picasso_self_portrait": "Self-portrait — Picasso",
    "rain_princess": "Rain Princess — Afremov",
    "robert_delaunay_portrait": "Portrait — Robert Delaunay",
    "seated_nude": "Seated Nude — Picasso",
    "shipwreck": "The Shipwreck — Turner",
    "starry_night": "The Starry Night — Van Gogh",
    "stars2": "Stars",
    "strip": "Strip",
    "the_scream": "The Scream — Munch",
    "udnie": "Udnie — Picabia",
    "wave": "The Great Wave — Hokusai",
    "woman_with_hat_matisse": "Woman with a Hat — Matisse",
}

# words in a caption that say which image it is
CAPTION_STYLE = ("style",)
CAPTION_CONTENT = ("content", "original", "photo")
LANGUAGE_NAME = "English"
