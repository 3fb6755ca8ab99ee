import re

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from mycelery.sms import constants

# Mainland China mobile numbers: 11 ASCII digits, 13x to 19x. re.ASCII: \d must not match "１３８";
# fullmatch, not "^...$": "$" also matches before a trailing newline ("13800138000\n").
MOBILE_RE = re.compile(r"1[3-9]\d{9}", re.ASCII)
CODE_RE = re.compile(rf"\d{{{constants.SMS_CODE_LENGTH}}}", re.ASCII)

MOBILE_ERROR = _("Enter an 11-digit mainland China mobile number, such as 13800138000 (without +86).")
CODE_ERROR = format_lazy(_("The code is {digits} digits."), digits=constants.SMS_CODE_LENGTH)


class PatternField(serializers.Field):
    """A string matching ``pattern``; anything else (numbers, lists, null bytes, full-width digits) gets
    the one message a person understands. A number is refused, not converted: "012345" is not 12345."""

    def __init__(self, pattern, message, **kwargs):
        self.pattern, self.message = pattern, message
        super().__init__(error_messages={"null": message}, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self.pattern.fullmatch(data):
            raise serializers.ValidationError(self.message)
        return data

    def to_representation(self, value):
        return value


class MobileSerializer(serializers.Serializer):
    mobile = PatternField(MOBILE_RE, MOBILE_ERROR)


class SMSCodeVerifySerializer(MobileSerializer):
    code = PatternField(CODE_RE, CODE_ERROR)
