# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x00002063  # BRANCH funct3 = 2
    EXPECT_PANIC_TAIL
TEST_END
