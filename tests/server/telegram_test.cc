// The parts of the Telegram sender that need no Bot API server: the text cut
// to Telegram's limit on a character boundary, and a token that could change
// the request's path refused before anything is sent.
#include "qmtl/server/telegram.h"

#include <gtest/gtest.h>

namespace qmtl::server {
namespace {

TEST(TelegramText, ShortTextIsSentAsItIs) {
  EXPECT_EQ(fit_telegram_text("[qmtl] world 'a': 'b' promoted"), "[qmtl] world 'a': 'b' promoted");
  const std::string exactly(4096, 'x');
  EXPECT_EQ(fit_telegram_text(exactly), exactly);
}

TEST(TelegramText, LongTextIsCutOnACharacterBoundary) {
  std::string text = "a";
  for (int i = 0; i < 3000; ++i) text += "\xc3\xa9";  // é: two bytes
  const std::string cut = fit_telegram_text(text);
  EXPECT_LE(cut.size(), 4096u);
  EXPECT_GT(cut.size(), 4090u);
  ASSERT_TRUE(cut.ends_with("\u2026"));
  // Before the ellipsis: "a" then whole é's only.
  const std::string kept = cut.substr(0, cut.size() - 3);
  EXPECT_EQ((kept.size() - 1) % 2, 0u);
  EXPECT_EQ(kept.substr(kept.size() - 2), "\xc3\xa9");
}

TEST(TelegramSend, ATokenThatIsNotABotTokenIsRefusedUnsent) {
  // Port 9 (discard) on loopback: were it tried, the answer would be a
  // refused connection, not this.
  for (const std::string_view token :
       {"", "nocolon", "123:ab/../x", "abc:def", "123:ab?x=1", ":abc"}) {
    const auto out = send_telegram(
        {.api = "http://127.0.0.1:9", .token = std::string(token), .chat_id = "1", .text = "t"},
        {.timeout = std::chrono::milliseconds(500)});
    EXPECT_FALSE(out.delivered) << token;
    EXPECT_TRUE(out.permanent) << token;
    EXPECT_NE(out.said.find("the token is not a bot token"), std::string::npos) << out.said;
    if (!token.empty()) {
      EXPECT_EQ(out.said.find(token), std::string::npos) << out.said;
    }
  }
}

TEST(TelegramSend, NoAnswerIsRetriedAndNamesNoToken) {
  const auto out = send_telegram(
      {.api = "http://127.0.0.1:9", .token = "123456:AAHsecretsecret", .chat_id = "1", .text = "t"},
      {.timeout = std::chrono::milliseconds(500)});
  EXPECT_FALSE(out.delivered);
  EXPECT_FALSE(out.permanent) << out.said;
  EXPECT_TRUE(out.said.starts_with("nothing: ")) << out.said;
  EXPECT_EQ(out.said.find("AAHsecret"), std::string::npos) << out.said;
}

}  // namespace
}  // namespace qmtl::server
