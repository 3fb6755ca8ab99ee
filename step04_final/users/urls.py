from django.urls import path

from . import views

urlpatterns = [
    path("sms/", views.SMSCodeAPIView.as_view()),
    path("sms/verify/", views.SMSCodeVerifyAPIView.as_view()),
    # The chapter's address: 405, with a message that names the new one.
    path("sms/<mobile>/", views.ChapterSMSCodeView.as_view()),
]
