from django.urls import path

from users.views import SMSCodeAPIView

urlpatterns = [
    path("users/sms/", SMSCodeAPIView.as_view()),
]
